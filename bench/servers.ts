/**
 * The servers under load run as child processes of the bench, never inside it, so the load generator and the
 * server do not share an event loop. Each child is started with the same Node binary as the bench, waited for
 * on its /healthz, sampled for memory through /proc, and stopped with SIGTERM (SIGKILL if it hangs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const PROJECT_ROOT = path.resolve(import.meta.dirname, '..');
// Children need Node 24's type stripping. `npm run bench` runs on it already; a test runner started by the
// machine's older global node does not, and then the project's own pinned binary is used.
const NODE = Number(process.versions.node.split('.')[0]) >= 24 ? process.execPath : path.join(PROJECT_ROOT, 'node_modules/.bin/node');
const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 15_000;

export interface ChildServer {
  name: string;
  pid: number;
  /** scheme://host:port */
  origin: string;
  /** Current resident set size in bytes, or undefined once the process is gone. */
  rssBytes(): number | undefined;
  /** RSS split into anonymous memory (heaps, buffers) and mapped file pages (LevelDB's mmapped tables, code). */
  rssPartsBytes(): { anon: number; file: number } | undefined;
  /** Lifetime peak resident set size (VmHWM) in bytes, or undefined once the process is gone. */
  peakRssBytes(): number | undefined;
  /** How the process ended and the tail of its output, or undefined while it runs. */
  exitReport(): string | undefined;
  stop(): Promise<void>;
  /** SIGKILL, as a power cut would: no shutdown code runs. Resolves once the process is gone. */
  kill(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A `Vm…:   1234 kB` (or `Rss…:`) line of /proc/<pid>/status in bytes (Linux only; undefined elsewhere or after exit). */
export function procStatusBytes(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile'): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** CPU time (user + system) a process has used, in seconds, from /proc/<pid>/stat; undefined after exit. */
export function procCpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces: count fields after its closing parenthesis. utime and stime
  // are fields 14 and 15, in clock ticks; USER_HZ is 100 on every Linux ABI Node runs on.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export interface Usage {
  peakRssBytes: number;
  /** CPU time (user + system) used while watched, in seconds. */
  cpuSeconds: number;
  /** CPU time over wall time, in percent of one core (a process with busy worker threads exceeds 100). */
  cpuPercent: number;
}

/** Samples a server's VmRSS every `intervalMs` and its CPU time, until stopped. */
export function watchUsage(server: ChildServer, intervalMs = 100): { stop(): Usage } {
  let peak = server.rssBytes() ?? 0;
  const cpuStart = procCpuSeconds(server.pid) ?? 0;
  const wallStart = performance.now();
  const timer = setInterval(() => {
    peak = Math.max(peak, server.rssBytes() ?? 0);
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      const wallSeconds = (performance.now() - wallStart) / 1000;
      const cpuSeconds = (procCpuSeconds(server.pid) ?? cpuStart) - cpuStart;
      return { peakRssBytes: Math.max(peak, server.rssBytes() ?? 0), cpuSeconds, cpuPercent: wallSeconds > 0 ? (100 * cpuSeconds) / wallSeconds : 0 };
    },
  };
}

async function waitHealthy(origin: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`exited (${child.exitCode ?? child.signalCode}) before it was healthy:\n${output()}`);
    }
    try {
      const response = await fetch(`${origin}/healthz`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`not healthy after ${START_TIMEOUT_MS / 1000} s:\n${output()}`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts `node <script>` with `env` added to the bench's environment and waits until `origin/healthz` answers. */
export async function startChild(name: string, script: string, env: Record<string, string>, origin: string): Promise<ChildServer> {
  const child = spawn(NODE, [script], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Keep only the tail of the child's output, for the error message if it fails; draining it also keeps the
  // child from blocking on a full pipe.
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  child.on('error', (err) => keep(Buffer.from(`\n${err.message}\n`)));
  const pid = child.pid;
  try {
    if (pid === undefined) throw new Error('could not be spawned');
    await waitHealthy(origin, child, () => tail);
  } catch (err) {
    await stopChild(child);
    throw new Error(`${name} server (${script}) ${(err as Error).message}`);
  }
  return {
    name,
    pid,
    origin,
    rssBytes: () => procStatusBytes(pid, 'VmRSS'),
    rssPartsBytes: () => {
      const anon = procStatusBytes(pid, 'RssAnon');
      const file = procStatusBytes(pid, 'RssFile');
      return anon === undefined || file === undefined ? undefined : { anon, file };
    },
    peakRssBytes: () => procStatusBytes(pid, 'VmHWM'),
    exitReport: () => (child.exitCode !== null || child.signalCode !== null ? `${name} exited (${child.exitCode ?? child.signalCode}):\n${tail}` : undefined),
    stop: () => stopChild(child),
    kill: () =>
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
  };
}
