/**
 * `mkdir -p` that fails where Node's own hangs. Node's recursive mkdir steps back to the parent on ENOENT and
 * forward again once the parent exists; a parent that exists but still answers ENOENT for the child, as procfs
 * does (DATA_DIR=/proc/foo), sends it round that loop forever: the start hung at full CPU without a word. Here a
 * second ENOENT, once the parent is known to exist, is final.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

export async function makeDirectory(dir: string, mode: number): Promise<void> {
  try {
    await fs.mkdir(dir, { mode });
    return;
  } catch (err) {
    if (await existsAsDirectory(dir, err)) return;
    if (codeOf(err) !== 'ENOENT' || path.dirname(dir) === dir) throw cannotCreate(dir, err);
  }
  await makeDirectory(path.dirname(dir), mode);
  try {
    await fs.mkdir(dir, { mode });
  } catch (err) {
    if (await existsAsDirectory(dir, err)) return;
    throw cannotCreate(dir, err);
  }
}

/** EEXIST from a directory is success (already there, or made meanwhile by another process); from a file it is not. */
async function existsAsDirectory(dir: string, err: unknown): Promise<boolean> {
  if (codeOf(err) !== 'EEXIST') return false;
  return fs.stat(dir).then((stat) => stat.isDirectory(), () => false);
}

function cannotCreate(dir: string, err: unknown): Error {
  const code = codeOf(err) ?? 'error';
  const why = code === 'ENOENT'
    ? 'its parent exists but takes no new entries (a pseudo-filesystem such as /proc)'
    : code === 'EEXIST' ? 'something that is not a directory is in the way' : (err as Error).message;
  return new Error(`cannot create directory ${dir} (${code}): ${why}`, { cause: err });
}

const codeOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;
