/**
 * C2SP signed notes (https://github.com/C2SP/C2SP/blob/main/signed-note.md) with Ed25519 signatures, and the
 * tlog-checkpoint body they carry (https://github.com/C2SP/C2SP/blob/main/tlog-checkpoint.md). Pure apart from
 * node:crypto; no I/O.
 *
 * A note is UTF-8 text: a body of newline-terminated lines, one blank line, then signature lines
 * `— <name> <base64(keyid(4) ‖ signature)>\n`. The signature covers the body bytes (with its final newline).
 * Ed25519 key id = first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key); verifier key =
 * `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
 */
import { createPrivateKey, createPublicKey, hash, sign, verify, type KeyObject } from 'node:crypto';
import { errors } from '../errors.ts';
import { fromBase64, toBase64 } from './entry.ts';
import { HASH_SIZE, type Hash } from './merkle.ts';

/** The C2SP signature type byte of Ed25519. */
export const ED25519_TYPE = 0x01;
const EM_DASH = '\u2014';
/** RFC 8410 PKCS#8 prefix of an Ed25519 private key; the 32-byte seed follows. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
/** RFC 8410 SPKI prefix of an Ed25519 public key; the 32-byte key follows. */
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

export interface NoteSigner {
  name: string;
  keyId: Uint8Array;
  publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export interface NoteVerifier {
  name: string;
  keyId: Uint8Array;
  publicKey: Uint8Array;
  key: KeyObject;
}

const badNote = (why: string) => errors.badRequest(`Malformed signed note: ${why}`, undefined, 'ERR_NOTE_MALFORMED');
const badKey = (why: string) => errors.badRequest(`Malformed verifier key: ${why}`, undefined, 'ERR_NOTE_KEY');

/** Key names: non-empty, no whitespace, no `+` (signed-note §"Signatures"). */
export function isKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name);
}

export function keyId(name: string, publicKey: Uint8Array): Uint8Array {
  const digest = hash('sha256', Buffer.concat([Buffer.from(name, 'utf8'), Buffer.from([0x0a, ED25519_TYPE]), publicKey]), 'buffer');
  return new Uint8Array(digest.subarray(0, 4));
}

/** An Ed25519 signer from a 32-byte seed (RFC 8032 private key). */
export function signerFromSeed(name: string, seed: Uint8Array): NoteSigner {
  if (!isKeyName(name)) throw badKey(`invalid key name '${name}'`);
  if (seed.length !== 32) throw errors.internal('An Ed25519 seed is 32 bytes', 'ERR_NOTE_KEY');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const publicKey = new Uint8Array(spki.subarray(SPKI_ED25519.length));
  return { name, keyId: keyId(name, publicKey), publicKey, sign: (message) => new Uint8Array(sign(null, message, privateKey)) };
}

export function verifierKeyString(name: string, publicKey: Uint8Array): string {
  const hex = Buffer.from(keyId(name, publicKey)).toString('hex');
  return `${name}+${hex}+${toBase64(Buffer.concat([Buffer.from([ED25519_TYPE]), publicKey]))}`;
}

/** Parses `name+keyid+base64(0x01 ‖ key)`; the key id must match the one the name and key imply. */
export function parseVerifierKey(text: string): NoteVerifier {
  // The base64 key may itself contain '+': only the first two separate fields (names have none).
  const m = /^([^+]*)\+([^+]*)\+(.*)$/s.exec(text.trim());
  if (!m) throw badKey('expected name+keyid+key');
  const [, name, hex, b64] = m as unknown as [string, string, string, string];
  if (!isKeyName(name)) throw badKey('invalid key name');
  if (!/^[0-9a-f]{8}$/.test(hex)) throw badKey('key id must be 8 lowercase hex digits');
  let raw: Uint8Array;
  try {
    raw = fromBase64(b64);
  } catch {
    throw badKey('key is not base64');
  }
  if (raw.length !== 33 || raw[0] !== ED25519_TYPE) throw badKey('only Ed25519 keys (type 0x01, 32 bytes) are supported');
  const publicKey = raw.subarray(1);
  const id = keyId(name, publicKey);
  if (Buffer.from(id).toString('hex') !== hex) throw badKey('key id does not match name and key');
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey]), format: 'der', type: 'spki' });
  return { name, keyId: id, publicKey, key };
}

/** Signs `body` (newline-terminated lines) into a note with one signature line. */
export function signNote(body: string, signer: NoteSigner): string {
  if (!body.endsWith('\n') || body.includes('\n\n') || body.startsWith('\n')) throw badNote('the body must be non-empty lines, each ending in a newline');
  const sig = signer.sign(Buffer.from(body, 'utf8'));
  return `${body}\n${EM_DASH} ${signer.name} ${toBase64(Buffer.concat([signer.keyId, sig]))}\n`;
}

export interface NoteSignature {
  name: string;
  keyId: Uint8Array;
  signature: Uint8Array;
}

/** Splits a note into its body and signature lines (syntax only; verifies nothing). */
export function parseNote(note: string): { body: string; signatures: NoteSignature[] } {
  if (typeof note !== 'string' || !note.endsWith('\n')) throw badNote('a note ends with a newline');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw badNote('no blank line before the signatures');
  const body = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  const signatures = lines.map((line) => {
    const m = new RegExp(`^${EM_DASH} (\\S+) (\\S+)$`, 'u').exec(line);
    if (!m) throw badNote('signature line is not "— name base64"');
    let raw: Uint8Array;
    try {
      raw = fromBase64(m[2]!);
    } catch {
      throw badNote('signature is not base64');
    }
    if (raw.length < 5) throw badNote('signature too short');
    return { name: m[1]!, keyId: raw.subarray(0, 4), signature: raw.subarray(4) };
  });
  if (signatures.length === 0) throw badNote('no signature');
  return { body, signatures };
}

/** True when the note carries a valid signature by `verifier` (other signers' lines are ignored, as C2SP says). */
export function verifyNote(note: string, verifier: NoteVerifier): { ok: true; body: string } | { ok: false; reason: string } {
  let parsed;
  try {
    parsed = parseNote(note);
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  const mine = parsed.signatures.filter((s) => s.name === verifier.name && Buffer.from(s.keyId).equals(verifier.keyId));
  if (mine.length === 0) return { ok: false, reason: `no signature by ${verifier.name}` };
  const body = Buffer.from(parsed.body, 'utf8');
  for (const s of mine) {
    if (s.signature.length === 64 && verify(null, body, verifier.key, s.signature)) return { ok: true, body: parsed.body };
  }
  return { ok: false, reason: `the signature by ${verifier.name} does not verify` };
}

export interface Checkpoint {
  origin: string;
  size: number;
  root: Hash;
}

/** tlog-checkpoint body: origin, decimal size, base64 root, each on its own line. */
export function checkpointBody(cp: Checkpoint): string {
  if (!cp.origin || cp.origin.includes('\n')) throw badNote('invalid origin');
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw badNote('invalid size');
  return `${cp.origin}\n${cp.size}\n${toBase64(cp.root)}\n`;
}

/** Parses a checkpoint body (extension lines after the root are allowed and ignored, as the spec says). */
export function parseCheckpointBody(body: string): Checkpoint {
  const lines = body.split('\n');
  if (lines.length < 4 || lines.at(-1) !== '') throw badNote('a checkpoint has origin, size and root lines');
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (origin === '') throw badNote('empty origin');
  if (!/^(0|[1-9]\d{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw badNote('size is not a decimal integer');
  let root: Uint8Array;
  try {
    root = fromBase64(rootText);
  } catch {
    throw badNote('root is not base64');
  }
  if (root.length !== HASH_SIZE) throw badNote('root is not a SHA-256 hash');
  return { origin, size: Number(sizeText), root };
}

/** Verifies a checkpoint note's signature and parses it; throws ERR_CHECKPOINT_SIGNATURE or ERR_NOTE_MALFORMED. */
export function openCheckpoint(note: string, verifier: NoteVerifier): Checkpoint {
  const checked = verifyNote(note, verifier);
  if (!checked.ok) throw errors.badRequest(`Checkpoint signature invalid: ${checked.reason}`, undefined, 'ERR_CHECKPOINT_SIGNATURE');
  return parseCheckpointBody(checked.body);
}
