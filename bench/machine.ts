/**
 * What a figure needs beside it to be comparable: CPU, cores, memory, Node, kernel, the disk under the data
 * dir (fsync cost is most of a durable write), and the load average, since other work may share the machine.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { percentile } from './summary.ts';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  kernel: string;
  /** `<device> <fstype>, mounted on <mount>` for the data dir, or `unknown`. */
  dataDisk: string;
}

export function describeMachine(dataDir: string): Machine {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    dataDisk: diskOf(dataDir),
  };
}

/** `df -PT` (POSIX output) names the device and file system that hold `dir`. */
function diskOf(dir: string): string {
  try {
    const lines = execFileSync('df', ['-PT', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n');
    const [device, fsType, , , , , mount] = lines[lines.length - 1]!.split(/\s+/);
    return `${device} ${fsType}, mounted on ${mount}${rotational(device ?? '')}`;
  } catch {
    return 'unknown';
  }
}

/** `, sysfs rotational=0|1` from sysfs when the device is a plain block device, else nothing. */
function rotational(device: string): string {
  const name = /^\/dev\/([a-z]+)\d*$/.exec(device)?.[1];
  if (!name) return '';
  try {
    // Virtual disks often claim to be rotational whatever backs them: say what the kernel says, no more.
    return `, sysfs rotational=${readFileSync(`/sys/block/${name}/queue/rotational`, 'utf8').trim()}`;
  } catch {
    return '';
  }
}

/** The commit the figures belong to, `+ uncommitted changes` when the tree differs from it; `unknown` without git. */
export function codeRevision(dir: string): string {
  const git = (...args: string[]) => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const commit = git('rev-parse', '--short', 'HEAD');
    // Untracked files count: new source files are changes too (ignored files, e.g. data dirs, do not).
    return git('status', '--porcelain') === '' ? commit : `${commit} + uncommitted changes`;
  } catch {
    return 'unknown';
  }
}

/** `1.23 0.98 0.71` (1, 5 and 15 minutes) from /proc/loadavg, or os.loadavg() elsewhere. */
export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return os.loadavg().map((value) => value.toFixed(2)).join(' ');
  }
}

/**
 * Median and p99 time of appending 4 KiB and fdatasync-ing it, in ms, in `dir`: the floor under every durable
 * commit, so the create figures can be read against the disk they ran on.
 */
export async function syncLatency(dir: string, rounds = 200): Promise<{ p50Ms: number; p99Ms: number }> {
  const file = path.join(dir, 'fsync-probe');
  const handle = await fs.open(file, 'w');
  const block = Buffer.alloc(4096, 0x5a);
  const times: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const start = performance.now();
      await handle.write(block);
      await handle.datasync();
      times.push(performance.now() - start);
    }
  } finally {
    await handle.close();
    await fs.rm(file, { force: true });
  }
  const sorted = Float64Array.from(times).sort();
  return { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
}
