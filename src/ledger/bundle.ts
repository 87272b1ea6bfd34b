/**
 * Offline proof bundles: one entry, its RFC 9162 inclusion proof and the signed checkpoint it is proved against,
 * verifiable with the node's verifier key and nothing else. Served as JSON (`GET /ledger/bundle`) whose
 * `tlogProof` member is the same proof in the C2SP tlog-proof text format (https://c2sp.org/tlog-proof):
 *
 *   c2sp.org/tlog-proof@v1
 *   extra <base64 of the entry's canonical bytes>
 *   index <n>
 *   <base64 proof hash, one per line>
 *   <blank line>
 *   <checkpoint note>
 *
 * Pure: no I/O.
 */
import { errors } from '../errors.ts';
import { fromBase64, parseEntry, toBase64 } from './entry.ts';
import { hashesEqual, leafHash, verifyInclusion } from './merkle.ts';
import { openCheckpoint, type NoteVerifier } from './note.ts';

export const BUNDLE_FORMAT = 'sealed-fhir proof bundle v1';

export interface ProofBundle {
  format: typeof BUNDLE_FORMAT;
  index: number;
  /** The entry's exact canonical bytes, as a string. */
  entry: string;
  leafHash: string;
  /** Tree size of the checkpoint. */
  size: number;
  proof: string[];
  /** The signed checkpoint note. */
  checkpoint: string;
  /** The verifier key the checkpoint is signed with (for convenience; pin your own copy). */
  key: string;
  tlogProof: string;
}

const HEADER = 'c2sp.org/tlog-proof@v1';

export function makeBundle(parts: { index: number; entry: Uint8Array; size: number; proof: Uint8Array[]; checkpoint: string; key: string }): ProofBundle {
  const proof = parts.proof.map(toBase64);
  const lines = [HEADER, `extra ${toBase64(parts.entry)}`, `index ${parts.index}`, ...proof];
  return {
    format: BUNDLE_FORMAT,
    index: parts.index,
    entry: Buffer.from(parts.entry).toString('utf8'),
    leafHash: toBase64(leafHash(parts.entry)),
    size: parts.size,
    proof,
    checkpoint: parts.checkpoint,
    key: parts.key,
    tlogProof: `${lines.join('\n')}\n\n${parts.checkpoint}`,
  };
}

/** Parses the C2SP text form back into entry bytes, index, proof and checkpoint. */
export function parseTlogProof(text: string): { entry: Uint8Array; index: number; proof: Uint8Array[]; checkpoint: string } {
  const bad = (why: string) => errors.badRequest(`Malformed tlog-proof: ${why}`, undefined, 'ERR_BUNDLE_MALFORMED');
  const split = text.indexOf('\n\n');
  if (split < 0) throw bad('no blank line before the checkpoint');
  const lines = text.slice(0, split).split('\n');
  if (lines[0] !== HEADER) throw bad(`first line must be ${HEADER}`);
  let at = 1;
  let entry: Uint8Array | undefined;
  if (lines[at]?.startsWith('extra ')) entry = fromBase64(lines[at++]!.slice(6));
  const m = /^index (0|[1-9]\d{0,15})$/.exec(lines[at++] ?? '');
  if (!m) throw bad('missing index line');
  if (entry === undefined) throw bad('this server puts the entry in the extra line; it is missing');
  return { entry, index: Number(m[1]), proof: lines.slice(at).map((l) => fromBase64(l)), checkpoint: text.slice(split + 2) };
}

export type BundleResult = { ok: true; index: number; size: number; leafHash: string } | { ok: false; code: string; message: string };

/** Verifies a bundle (JSON object or tlog-proof text) against a trusted verifier key. */
export function verifyBundle(bundle: ProofBundle | string, verifier: NoteVerifier): BundleResult {
  const fail = (code: string, message: string): BundleResult => ({ ok: false, code, message });
  let parsed;
  try {
    parsed = parseTlogProof(typeof bundle === 'string' ? bundle : bundle.tlogProof);
  } catch (err) {
    return fail('ERR_BUNDLE_MALFORMED', (err as Error).message);
  }
  if (typeof bundle !== 'string') {
    if (bundle.format !== BUNDLE_FORMAT) return fail('ERR_BUNDLE_MALFORMED', `format must be '${BUNDLE_FORMAT}'`);
    // The JSON members must say the same as the text form they accompany.
    const same = bundle.index === parsed.index && bundle.entry === Buffer.from(parsed.entry).toString('utf8') &&
      bundle.checkpoint === parsed.checkpoint && bundle.proof.join() === parsed.proof.map(toBase64).join();
    if (!same) return fail('ERR_BUNDLE_MALFORMED', 'the JSON members disagree with tlogProof');
  }
  let cp;
  try {
    cp = openCheckpoint(parsed.checkpoint, verifier);
  } catch (err) {
    return fail('ERR_CHECKPOINT_SIGNATURE', (err as Error).message);
  }
  try {
    parseEntry(parsed.entry, parsed.index);
  } catch (err) {
    return fail('ERR_BUNDLE_ENTRY', (err as Error).message);
  }
  const leaf = leafHash(parsed.entry);
  if (typeof bundle !== 'string' && !hashesEqual(fromBase64(bundle.leafHash), leaf)) return fail('ERR_BUNDLE_LEAF', 'leafHash is not the hash of the entry');
  if (typeof bundle !== 'string' && bundle.size !== cp.size) return fail('ERR_BUNDLE_MALFORMED', 'size differs from the checkpoint');
  if (!verifyInclusion(leaf, parsed.index, cp.size, parsed.proof, cp.root)) {
    return fail('ERR_INCLUSION', `entry ${parsed.index} is not proved to be in the checkpointed tree of size ${cp.size}`);
  }
  return { ok: true, index: parsed.index, size: cp.size, leafHash: toBase64(leaf) };
}
