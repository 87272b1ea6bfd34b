/**
 * Verifies a running node's ledger from outside, through the auditor API alone, trusting nothing but the
 * verifier key the auditor pinned: every checkpoint's signature (all with the same origin), consistency proofs
 * between successive checkpoints (checked by merkle.ts), and then every entry up to the latest checkpoint —
 * served leaf hash, canonical schema and seq, hash chain — with the tree rebuilt leaf by leaf so the root at each
 * checkpoint's size is compared with the signed one. Memory: the frontier (O(log n)) and one page of entries.
 */
import { networkFailure } from '../errors.ts';
import { fromBase64, GENESIS_PREV, parseEntry, toBase64 } from './entry.ts';
import { hashesEqual, leafHash, verifyConsistency, type Hash } from './merkle.ts';
import { openCheckpoint, type Checkpoint, type NoteVerifier } from './note.ts';
import { appendLeaf, rootFromFrontier } from './tlog.ts';

export interface RemoteOptions {
  /** Server origin or FHIR base URL (a trailing /fhir is dropped). */
  url: string;
  token: string | undefined;
  verifier: NoteVerifier;
  log: (line: string) => void;
  fetch?: typeof fetch;
}

export type RemoteResult = { ok: true; size: number; checkpoints: number } | { ok: false; code: string; message: string; index?: number };

const PAGE = 1000;

export async function verifyRemote(options: RemoteOptions): Promise<RemoteResult> {
  const origin = options.url.replace(/\/+$/, '').replace(/\/fhir$/, '');
  const doFetch = options.fetch ?? fetch;
  const get = async (path: string): Promise<any> => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    const res = await doFetch(`${origin}${path}`, { headers }).catch((err: unknown) => {
      throw new Error(`GET ${origin}${path}: ${networkFailure(err)}`, { cause: err });
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status} ${text.slice(0, 300)}`);
    return JSON.parse(text);
  };
  const fail = (code: string, message: string, index?: number): RemoteResult => ({ ok: false, code, message, ...(index === undefined ? {} : { index }) });

  // 1. Every checkpoint: signature, one origin, growing sizes, consistency with the previous one.
  const checkpoints: Checkpoint[] = [];
  for (let from = 0; ; ) {
    const page: Array<{ size: number; note: string }> = await get(`/ledger/checkpoints?from=${from}&limit=${PAGE}`);
    if (page.length === 0) break;
    for (const record of page) {
      let cp: Checkpoint;
      try {
        cp = openCheckpoint(record.note, options.verifier);
      } catch (err) {
        return fail('ERR_CHECKPOINT_SIGNATURE', `checkpoint ${record.size}: ${(err as Error).message}`);
      }
      const prev = checkpoints.at(-1);
      if (cp.size !== record.size) return fail('ERR_CHECKPOINT_RECORD', `checkpoint ${record.size} signs size ${cp.size}`);
      if (prev && (cp.origin !== prev.origin || cp.size <= prev.size)) return fail('ERR_CHECKPOINT_ORDER', `checkpoint ${cp.size} does not extend ${prev.size} of the same origin`);
      if (prev) {
        const { proof } = await get(`/ledger/proof/consistency?from=${prev.size}&to=${cp.size}`);
        if (!verifyConsistency(prev.size, cp.size, proof.map(fromBase64), prev.root, cp.root)) {
          return fail('ERR_CHECKPOINT_INCONSISTENT', `checkpoints ${prev.size} and ${cp.size} are not consistent`);
        }
      }
      checkpoints.push(cp);
    }
    from = checkpoints.at(-1)!.size + 1;
  }
  options.log(`checkpoints: ${checkpoints.length} signatures and consistency proofs verified`);
  const last = checkpoints.at(-1);
  if (!last) return { ok: true, size: 0, checkpoints: 0 };

  // 2. Every entry up to the latest checkpoint; the rebuilt root checked at each checkpoint size.
  const bySize = new Map(checkpoints.map((c) => [c.size, c]));
  const frontier: Hash[] = [];
  let prev = GENESIS_PREV;
  let next = 0;
  let lastGood = 0;
  for (let start = 0; start < last.size; start += PAGE) {
    const end = Math.min(last.size, start + PAGE);
    const page: Array<{ index: number; entry: string; leafHash: string }> = await get(`/ledger/entries?start=${start}&end=${end}`);
    if (page.length !== end - start) return fail('ERR_LEDGER_GAP', `entries ${start}..${end} came back with ${page.length}`, start + page.length);
    for (const item of page) {
      const seq = next;
      if (item.index !== seq) return fail('ERR_LEDGER_GAP', `expected entry ${next}, got ${item.index}`, next);
      const bytes = Buffer.from(item.entry, 'utf8');
      const leaf = leafHash(bytes);
      if (item.leafHash !== toBase64(leaf)) return fail('ERR_LEDGER_LEAF_MISMATCH', `entry ${seq}: served leafHash is not the hash of the entry`, seq);
      let entryPrev: string;
      try {
        entryPrev = parseEntry(bytes, seq).prev;
      } catch (err) {
        return fail('ERR_LEDGER_ENTRY_INVALID', (err as Error).message, seq);
      }
      if (entryPrev !== prev) return fail('ERR_LEDGER_CHAIN', `entry ${seq} prev does not match entry ${seq - 1}`, seq);
      appendLeaf(frontier, seq, leaf);
      prev = toBase64(leaf);
      next++;
      const cp = bySize.get(next);
      if (cp) {
        if (!hashesEqual(rootFromFrontier(frontier), cp.root)) {
          return fail('ERR_CHECKPOINT_ROOT', `entries ${lastGood}..${next - 1} do not give the root signed in checkpoint ${cp.size}`, lastGood);
        }
        lastGood = next;
      }
    }
  }
  options.log(`entries: ${next} verified (schema, chain, leaf hashes, roots of ${checkpoints.length} checkpoints)`);
  return { ok: true, size: next, checkpoints: checkpoints.length };
}
