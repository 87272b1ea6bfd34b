/**
 * A private copy of a stopped node's LevelDB directory, for checks that must not change what they check.
 *
 * Opening a LevelDB database writes to it: recovery replays the write-ahead log into a new table, deletes the
 * log, and drops any log record whose checksum fails together with the rest of its block. An offline verifier
 * that opened the node's own directory would therefore erase the very tampering it had just reported (the next
 * run would find nothing). The copy costs little: table files are immutable once written (LevelDB only ever
 * creates and deletes them), so they are hard-linked; only the log, the manifest and CURRENT are copied.
 */
import type { BigIntStats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

export interface StoreCopy {
  /** The copy's database directory, to open instead of the original. */
  dir: string;
  remove(): Promise<void>;
}

const IMMUTABLE = /\.(ldb|sst)$/;

/** Copies `dbDir` into a new directory beside it (same file system, so tables can be linked). */
export async function privateStoreCopy(dbDir: string): Promise<StoreCopy> {
  const dir = await fs.mkdtemp(path.join(path.dirname(dbDir), '.verify-copy-'));
  const remove = () => fs.rm(dir, { recursive: true, force: true });
  try {
    for (const name of await fs.readdir(dbDir)) {
      // LOCK belongs to whoever opens a directory; LOG/LOG.old are LevelDB's own info log.
      if (name === 'LOCK' || name === 'LOG' || name === 'LOG.old') continue;
      const from = path.join(dbDir, name);
      const to = path.join(dir, name);
      if (IMMUTABLE.test(name)) {
        await fs.link(from, to).catch(() => fs.copyFile(from, to));
      } else {
        await fs.copyFile(from, to);
      }
    }
  } catch (err) {
    await remove();
    throw err;
  }
  return { dir, remove };
}

/**
 * Whether another process holds LevelDB's lock on `dbDir` (a running server), read from /proc/locks: opening a
 * copy cannot tell, and a copy taken while a server writes could be torn. Undefined where the OS does not say.
 */
export async function isHeldByAnotherProcess(dbDir: string): Promise<boolean | undefined> {
  let locks: string;
  let stat: BigIntStats;
  try {
    [locks, stat] = await Promise.all([fs.readFile('/proc/locks', 'utf8'), fs.stat(path.join(dbDir, 'LOCK'), { bigint: true })]);
  } catch {
    return undefined;
  }
  // "1: POSIX  ADVISORY  WRITE 4242 fd:01:1234567 0 EOF": major:minor (hex) and inode of the locked file. stat()
  // gives the device in glibc's encoding (gnu_dev_major / gnu_dev_minor).
  const dev = stat.dev;
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  const wanted = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${stat.ino}`;
  return locks.split('\n').some((line) => line.trim().split(/\s+/)[5] === wanted);
}
