/**
 * Offline check of a whole node store from read access alone (Tessera's fsck in spirit): the ledger (verify.ts),
 * every signed checkpoint (signature, root against the tree, consistency with the previous one, its IPFS block and
 * the block chain), and optionally every IPFS block of the embedded node against its CID and every version
 * record's block present. Used by `npm run verify -- --data-dir` and by the server at start.
 */
import { createHash } from 'node:crypto';
import { base32 } from 'multiformats/bases/base32';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { sha256 } from 'multiformats/hashes/sha2';
import { bytesSublevel, jsonRecordProblem, jsonSublevel, pad, parseJsonRecord, stringSublevel, SUBLEVELS, type Database } from '../storage/db.ts';
import { AuditIndex } from './audit-index.ts';
import { checkpointBlock, checkpointSublevel, META_VERIFIER_KEYS } from './checkpoint.ts';
import { toBase64 } from './entry.ts';
import { hashesEqual, verifyConsistency, type Hash } from './merkle.ts';
import { openCheckpoint, parseVerifierKey, type NoteVerifier } from './note.ts';
import { consistencyProof, treeHash, type HashReader } from './tlog.ts';
import { verifyLedger } from './verify.ts';

export interface Problem {
  code: string;
  message: string;
  /** Ledger entry index concerned, when there is one. */
  index?: number;
  /** Checkpoint size or block key concerned. */
  at?: string;
}

/** A record check's findings, each also logged as `<at>: <code> <message>` (store-check.ts, key-check.ts). */
export function problemLog(log: (line: string) => void): { problems: Problem[]; fail: (code: string, at: string, message: string) => void } {
  const problems: Problem[] = [];
  const fail = (code: string, at: string, message: string) => {
    problems.push({ code, at, message });
    log(`${at}: ${code} ${message}`);
  };
  return { problems, fail };
}

export interface FsckOptions {
  /** Verifier keys to trust; default: the keys the node recorded in its own store (trust on first use). */
  verifiers?: NoteVerifier[];
  /**
   * `all` (default): every block of the embedded IPFS node against its CID, every version record's block present,
   * and each checkpoint's block; `checkpoints`: only the checkpoints' blocks; `none`: no block (blocks live on a
   * Kubo node, not in this database).
   */
  blocks?: 'all' | 'checkpoints' | 'none';
  /** Progress lines (the CLI prints them). */
  log?: (line: string) => void;
}

export interface FsckReport {
  ok: boolean;
  size: number;
  checkpoints: number;
  blocks: number;
  problems: Problem[];
}

const SCAN = { fillCache: false } as {};

export async function fsck(db: Database, options: FsckOptions = {}): Promise<FsckReport> {
  const log = options.log ?? (() => undefined);
  const problems: Problem[] = [];
  const ledger = await verifyLedger(db);
  let size = 0;
  if (ledger.ok) {
    size = ledger.size;
    log(`ledger: ${size} entries, chain and stored hashes verified, root ${toBase64(ledger.root)}`);
  } else {
    problems.push({ code: ledger.code, index: ledger.index, message: ledger.message });
    log(`ledger: FIRST BAD INDEX ${ledger.index}: ${ledger.code} ${ledger.message}`);
  }
  const verifiers = options.verifiers ?? (await storedVerifiers(db));
  const mode = options.blocks ?? 'all';
  const checkpoints = await checkCheckpoints(db, verifiers, ledger.ok, mode !== 'none', problems, log);
  let blocks = 0;
  if (mode === 'all') blocks = await checkBlocks(db, problems, log);
  const auditIndex = new AuditIndex(db);
  const audit = await auditIndex.check();
  for (const p of audit.slice(0, 20)) log(`audit index: ${p.code} ${p.message}`);
  problems.push(...audit);
  const rebuilding = (await auditIndex.state()).state === 'rebuilding';
  log(`audit index: ${rebuilding ? 'not checked: a rebuild was interrupted, the server redoes it at start' : audit.length === 0 ? 'matches the entries' : `${audit.length} problem(s)`}`);
  return { ok: problems.length === 0, size, checkpoints, blocks, problems };
}

export async function storedVerifiers(db: Database): Promise<NoteVerifier[]> {
  const keys = (await jsonSublevel<string[]>(db, SUBLEVELS.ledgerMeta).get(META_VERIFIER_KEYS)) ?? [];
  return keys.map((k) => parseVerifierKey(k));
}

function hashReaderOf(db: Database): HashReader {
  const hashes = bytesSublevel(db, SUBLEVELS.ledgerHash);
  return async (indexes) => {
    const values = await hashes.getMany(indexes.map((i) => pad(i)));
    return values.map((v, i) => {
      if (v === undefined) throw new Error(`stored hash ${indexes[i]} is missing`);
      return v;
    });
  };
}

function openWithAny(note: string, verifiers: NoteVerifier[]) {
  let last: unknown = new Error('no verifier key is known');
  for (const v of verifiers) {
    try {
      return openCheckpoint(note, v);
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

async function checkCheckpoints(db: Database, verifiers: NoteVerifier[], treeTrusted: boolean, withBlocks: boolean, problems: Problem[], log: (l: string) => void): Promise<number> {
  const blocks = bytesSublevel(db, SUBLEVELS.blocks);
  const read = hashReaderOf(db);
  let previous: { size: number; root: Hash; cid: string } | undefined;
  let count = 0;
  const fail = (code: string, at: number, message: string) => {
    problems.push({ code, at: String(at), message: `checkpoint ${at}: ${message}` });
    log(`checkpoint ${at}: ${code} ${message}`);
  };
  for await (const [key, record] of checkpointSublevel(db).iterator(SCAN)) {
    count++;
    const at = Number(key);
    let cp;
    try {
      cp = openWithAny(record.note, verifiers);
    } catch (err) {
      fail('ERR_CHECKPOINT_SIGNATURE', at, (err as Error).message);
      previous = undefined;
      continue;
    }
    if (cp.size !== at || record.size !== at || record.root !== toBase64(cp.root)) {
      fail('ERR_CHECKPOINT_RECORD', at, 'the record disagrees with its signed note');
    }
    if (treeTrusted) {
      try {
        const root = await treeHash(cp.size, read);
        if (!hashesEqual(root, cp.root)) fail('ERR_CHECKPOINT_ROOT', at, 'the signed root is not the root of the log at that size');
        if (previous) {
          const proof = await consistencyProof(previous.size, cp.size, read);
          if (!verifyConsistency(previous.size, cp.size, proof, previous.root, cp.root)) {
            fail('ERR_CHECKPOINT_INCONSISTENT', at, `not consistent with checkpoint ${previous.size}`);
          }
        }
      } catch (err) {
        fail('ERR_CHECKPOINT_ROOT', at, `beyond the log or unreadable: ${(err as Error).message}`);
      }
    }
    if (count === 1 ? record.prev !== null : previous !== undefined && record.prev !== previous.cid) fail('ERR_CHECKPOINT_CHAIN', at, 'prev does not name the previous checkpoint block');
    let cid: CID | undefined;
    try {
      cid = CID.parse(record.cid);
    } catch {
      fail('ERR_CHECKPOINT_BLOCK', at, 'invalid CID');
    }
    if (cid && withBlocks) {
      const bytes = await blocks.get(base32.encode(cid.multihash.bytes));
      if (bytes === undefined) {
        fail('ERR_CHECKPOINT_BLOCK', at, `block ${record.cid} is missing`);
      } else if (!Buffer.from(checkpointBlock(record.note, record.prev)).equals(Buffer.from(bytes)) || !digestMatches(cid.multihash.digest, bytes)) {
        fail('ERR_CHECKPOINT_BLOCK', at, `block ${record.cid} does not hold this checkpoint`);
      }
    }
    previous = { size: cp.size, root: cp.root, cid: record.cid };
  }
  log(`checkpoints: ${count} checked`);
  return count;
}

function digestMatches(digest: Uint8Array, bytes: Uint8Array): boolean {
  return createHash('sha256').update(bytes).digest().equals(Buffer.from(digest));
}

/** Every block against its key's multihash; every version record's block present. */
async function checkBlocks(db: Database, problems: Problem[], log: (l: string) => void): Promise<number> {
  const blocks = bytesSublevel(db, SUBLEVELS.blocks);
  let count = 0;
  for await (const [key, bytes] of blocks.iterator(SCAN)) {
    count++;
    let ok = false;
    try {
      const mh = Digest.decode(base32.decode(key));
      ok = mh.code === sha256.code && digestMatches(mh.digest, bytes);
    } catch {
      ok = false;
    }
    if (!ok) {
      problems.push({ code: 'ERR_BLOCK_CORRUPT', at: key, message: `block ${key} does not match its multihash` });
      log(`block ${key}: ERR_BLOCK_CORRUPT`);
    }
  }
  let versions = 0;
  // Parsed here: a version record that is not valid JSON is the records check's finding (store-check.ts), skipped here.
  for await (const [key, text] of stringSublevel(db, SUBLEVELS.version).iterator(SCAN)) {
    const parsed = parseJsonRecord(text);
    if (jsonRecordProblem(parsed) !== undefined) continue;
    const record = parsed as { cid?: string };
    if (!record.cid) continue;
    versions++;
    let present = false;
    try {
      present = (await blocks.get(base32.encode(CID.parse(record.cid).multihash.bytes))) !== undefined;
    } catch {
      present = false;
    }
    if (!present) {
      problems.push({ code: 'ERR_BLOCK_NOT_FOUND', at: key, message: `version ${key}: block ${record.cid} is missing` });
      log(`version ${key}: ERR_BLOCK_NOT_FOUND ${record.cid}`);
    }
  }
  log(`blocks: ${count} checked against their CIDs; ${versions} version records have their block`);
  return count;
}
