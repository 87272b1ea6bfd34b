/**
 * Checksums of LevelDB's own files, checked before the database is opened. classic-level opens LevelDB without
 * `paranoid_checks` and reads without `verify_checksums` (neither is exposed), so LevelDB itself
 *   - drops a write-ahead-log record whose CRC fails, and the rest of its 32 KiB block, silently: the newest
 *     commits vanish and the store looks like an older, consistent one (no ledger check can tell);
 *   - serves a table block whose CRC fails, as long as it still parses.
 * This module reads the files as LevelDB writes them (leveldb/doc/log_format.md, table_format.md) and reports
 * every record and block whose masked CRC-32C does not match. A log that merely ends inside a record is a write
 * cut short by a crash before it was acknowledged (LevelDB drops it too), not a problem.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Problem } from '../ledger/fsck.ts';

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli), the checksum LevelDB uses. */
export function crc32c(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** LevelDB stores CRCs masked (crc32c.h), so that a CRC of data that itself holds CRCs stays robust. */
export function maskedCrc(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

const LOG_BLOCK = 32768;
const LOG_HEADER = 7;

/** Offsets of log records whose CRC fails (a record cut off by the end of the file is not one). */
export function badLogRecords(file: Uint8Array): number[] {
  const bad: number[] = [];
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let at = 0;
  while (at < file.length) {
    const leftInBlock = LOG_BLOCK - (at % LOG_BLOCK);
    if (leftInBlock < LOG_HEADER) {
      at += leftInBlock; // the block's zero trailer
      continue;
    }
    if (at + LOG_HEADER > file.length) break; // a header cut short by a crash
    const stored = view.getUint32(at, true);
    const length = view.getUint16(at + 4, true);
    const type = file[at + 6]!;
    if (type === 0 && length === 0 && stored === 0) {
      at += LOG_HEADER; // zeroed (preallocated) space, as LevelDB skips it
      continue;
    }
    if (at + LOG_HEADER + length > file.length) break; // a record cut short by a crash
    if (LOG_HEADER + length > leftInBlock || maskedCrc(file.subarray(at + 6, at + LOG_HEADER + length)) !== stored) {
      bad.push(at);
      at += leftInBlock; // LevelDB drops the rest of the block; so do we, and look at the next one
      continue;
    }
    at += LOG_HEADER + length;
  }
  return bad;
}

const TABLE_MAGIC = 0xdb4775248b80fb57n;
const FOOTER = 48;

export function varint(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (let i = at; i < bytes.length && shift < 64; i++) {
    const b = bytes[i]!;
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [value, i + 1];
    shift += 7;
  }
  throw new Error('bad varint');
}

/** Snappy raw-format decompression (github.com/google/snappy/blob/main/format_description.txt). */
export function snappyDecompress(input: Uint8Array): Uint8Array {
  let [length, at] = varint(input, 0);
  const out = new Uint8Array(length);
  let pos = 0;
  while (at < input.length) {
    const tag = input[at++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let len = (tag >> 2) + 1;
      if (len > 60) {
        const extra = len - 60;
        len = 1;
        for (let i = 0; i < extra; i++) len += input[at + i]! * 2 ** (8 * i);
        at += extra;
      }
      if (pos + len > length || at + len > input.length) throw new Error('snappy literal overruns');
      out.set(input.subarray(at, at + len), pos);
      at += len;
      pos += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      len = ((tag >> 2) & 7) + 4;
      offset = ((tag >> 5) << 8) | input[at++]!;
    } else if (kind === 2) {
      len = (tag >> 2) + 1;
      offset = input[at]! | (input[at + 1]! << 8);
      at += 2;
    } else {
      len = (tag >> 2) + 1;
      offset = (input[at]! | (input[at + 1]! << 8) | (input[at + 2]! << 16)) + input[at + 3]! * 2 ** 24;
      at += 4;
    }
    if (offset === 0 || offset > pos || pos + len > length) throw new Error('bad snappy copy');
    for (let i = 0; i < len; i++, pos++) out[pos] = out[pos - offset]!;
  }
  if (pos !== length) throw new Error('snappy length mismatch');
  return out;
}

export interface BlockHandle {
  offset: number;
  size: number;
}

function handleAt(bytes: Uint8Array, at: number): [BlockHandle, number] {
  const [offset, next] = varint(bytes, at);
  const [size, end] = varint(bytes, next);
  return [{ offset, size }, end];
}

/** A block's contents (decompressed), after checking its trailer's CRC; throws on a mismatch. */
export function readBlock(file: Uint8Array, { offset, size }: BlockHandle): Uint8Array {
  if (offset + size + 5 > file.length) throw new Error(`block at ${offset} runs past the end of the file`);
  const stored = new DataView(file.buffer, file.byteOffset + offset + size + 1, 4).getUint32(0, true);
  if (maskedCrc(file.subarray(offset, offset + size + 1)) !== stored) throw new Error(`block at ${offset}: checksum mismatch`);
  const type = file[offset + size];
  const raw = file.subarray(offset, offset + size);
  if (type === 0) return raw;
  if (type === 1) return snappyDecompress(raw);
  throw new Error(`block at ${offset}: unknown compression ${type}`);
}

/** Entries of one block: [internal key, value], keys rebuilt from their shared prefixes. */
export function blockEntries(block: Uint8Array): Array<[Uint8Array, Uint8Array]> {
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const restarts = view.getUint32(block.length - 4, true);
  const end = block.length - 4 - 4 * restarts;
  const out: Array<[Uint8Array, Uint8Array]> = [];
  let key = new Uint8Array(0);
  for (let at = 0; at < end; ) {
    let shared: number;
    let unshared: number;
    let valueLength: number;
    [shared, at] = varint(block, at);
    [unshared, at] = varint(block, at);
    [valueLength, at] = varint(block, at);
    const next = new Uint8Array(shared + unshared);
    next.set(key.subarray(0, shared));
    next.set(block.subarray(at, at + unshared), shared);
    key = next;
    at += unshared;
    out.push([key, block.subarray(at, at + valueLength)]);
    at += valueLength;
  }
  return out;
}

/** The handles of a table's data blocks (its index block, CRC-checked). */
export function tableDataHandles(file: Uint8Array): BlockHandle[] {
  if (file.length < FOOTER) throw new Error('shorter than a table footer');
  const footer = file.subarray(file.length - FOOTER);
  if (new DataView(footer.buffer, footer.byteOffset + 40, 8).getBigUint64(0, true) !== TABLE_MAGIC) throw new Error('bad table magic');
  const [metaindex, next] = handleAt(footer, 0);
  const [index] = handleAt(footer, next);
  // The meta blocks (the filter) are checked too: a bad filter makes reads miss keys.
  for (const [, value] of blockEntries(readBlock(file, metaindex))) readBlock(file, handleAt(value, 0)[0]);
  return blockEntries(readBlock(file, index)).map(([, value]) => handleAt(value, 0)[0]);
}

/**
 * Every block of a table file; the first problem found, or undefined. A file without a valid footer is left to
 * LevelDB: a kill during a compaction leaves exactly that (the footer is written last, before the table is
 * recorded in the MANIFEST), and LevelDB ignores such an orphan; a live table without one fails every read
 * LevelDB makes of it, so it cannot be served silently either.
 */
export function tableProblem(file: Uint8Array): string | undefined {
  if (file.length < FOOTER || new DataView(file.buffer, file.byteOffset + file.length - 8, 8).getBigUint64(0, true) !== TABLE_MAGIC) return undefined;
  try {
    for (const handle of tableDataHandles(file)) readBlock(file, handle);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Problems in the LevelDB files of `dbDir`: every write-ahead-log record, and with `tables` every block of every
 * table (that reads the whole database once; the server does it for LEDGER_VERIFY_ON_START=full).
 */
export async function checkLevelDbFiles(dbDir: string, options: { tables: boolean }): Promise<Problem[]> {
  let names: string[];
  try {
    names = await fs.readdir(dbDir);
  } catch {
    return []; // a new node: nothing written yet
  }
  const problems: Problem[] = [];
  for (const name of names.sort()) {
    if (name.endsWith('.log')) {
      for (const at of badLogRecords(await fs.readFile(path.join(dbDir, name)))) {
        problems.push({ code: 'ERR_STORE_LOG_CORRUPT', at: `${name}@${at}`, message: `write-ahead log ${name}: the record at byte ${at} fails its checksum` });
      }
    } else if (options.tables && (name.endsWith('.ldb') || name.endsWith('.sst'))) {
      const problem = tableProblem(await fs.readFile(path.join(dbDir, name)));
      if (problem) problems.push({ code: 'ERR_STORE_TABLE_CORRUPT', at: name, message: `table ${name}: ${problem}` });
    }
  }
  return problems;
}
