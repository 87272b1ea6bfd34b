/**
 * Which keys each data block of a LevelDB table holds, so that the tamper test can aim a byte flip at a block
 * of index records, ledger records or IPFS blocks. The table format itself is read by the server's own file
 * checker (src/storage/leveldb-files.ts).
 */
import { blockEntries, readBlock, tableDataHandles } from '../../src/storage/leveldb-files.ts';

export interface DataBlock {
  /** Byte offset of the block's contents in the file, and their length (the 5-byte trailer follows). */
  offset: number;
  size: number;
  /** User keys of the block (the 8-byte sequence/type suffix of the internal key removed). */
  keys: string[];
}

const decoder = new TextDecoder();

/** The data blocks of a table file, in file order. */
export function dataBlocks(file: Uint8Array): DataBlock[] {
  return tableDataHandles(file).map((handle) => ({
    ...handle,
    keys: blockEntries(readBlock(file, handle)).map(([k]) => decoder.decode(k.subarray(0, k.length - 8))),
  }));
}

/** `blocks` from `!blocks!CIQ…`. */
export function sublevelOf(key: string): string {
  const end = key.indexOf('!', 1);
  return key.startsWith('!') && end > 0 ? key.slice(1, end) : '';
}
