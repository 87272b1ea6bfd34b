/**
 * C2SP signed notes and tlog-checkpoints: the specification's own example verifies, our notes round-trip, and every
 * altered byte, wrong key or malformed line is refused.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import {
  checkpointBody, keyId, openCheckpoint, parseCheckpointBody, parseNote, parseVerifierKey, signerFromSeed, signNote,
  verifierKeyString, verifyNote,
} from '../../src/ledger/note.ts';

const vectors = JSON.parse(await fs.readFile(path.join(import.meta.dirname, '../fixtures/merkle/ct-vectors.json'), 'utf8'));
const example = vectors.signedNoteExample as { vkey: string; note: string };

t.test('the C2SP signed-note example verifies with its verifier key, and round-trips', async (t) => {
  const verifier = parseVerifierKey(example.vkey);
  t.equal(verifier.name, 'example.com/foo');
  t.equal(Buffer.from(verifier.keyId).toString('hex'), '530d903a');
  t.equal(verifierKeyString(verifier.name, verifier.publicKey), example.vkey, 'the key string is rebuilt exactly');
  t.same(verifyNote(example.note, verifier), { ok: true, body: 'This is an example message.\n' });
  const parsed = parseNote(example.note);
  t.equal(parsed.signatures.length, 1);
  t.equal(Buffer.from(parsed.signatures[0]!.keyId).toString('hex'), '530d903a', 'the signature line starts with the key id');
  // Flip each byte of the body or signature: never verifies.
  const bytes = Buffer.from(example.note, 'utf8');
  let accepted = 0;
  for (let i = 0; i < bytes.length; i++) {
    const copy = Buffer.from(bytes);
    copy[i] = copy[i]! ^ 0x01;
    if (verifyNote(copy.toString('utf8'), verifier).ok) accepted++;
  }
  t.equal(accepted, 0, 'no single flipped bit verifies');
});

t.test('verifier keys: malformed or inconsistent keys are refused', async (t) => {
  const good = example.vkey;
  const bad = [
    '', 'example.com/foo', good.replace('+530d903a+', '+530d903b+'), good.replace('Aek', 'Bek'), `x y+${good.split('+').slice(1).join('+')}`,
    good.replace('AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k', 'AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2'),
  ];
  for (const key of bad) t.throws(() => parseVerifierKey(key), { code: 'ERR_NOTE_KEY' }, JSON.stringify(key));
});

t.test('checkpoints: signed, opened, and refused under another key or name', async (t) => {
  const signer = signerFromSeed('log.example/ledger', new Uint8Array(32).fill(1));
  const other = signerFromSeed('log.example/ledger', new Uint8Array(32).fill(2));
  t.same(signer.keyId, keyId(signer.name, signer.publicKey));
  const root = new Uint8Array(32).map((_, i) => i);
  const body = checkpointBody({ origin: 'log.example/ledger', size: 42, root });
  t.equal(body, `log.example/ledger\n42\n${Buffer.from(root).toString('base64')}\n`);
  const note = signNote(body, signer);
  t.match(note, /^log\.example\/ledger\n42\n[A-Za-z0-9+/=]{44}\n\n— log\.example\/ledger [A-Za-z0-9+/=]+\n$/);
  const cp = openCheckpoint(note, parseVerifierKey(verifierKeyString(signer.name, signer.publicKey)));
  t.same({ ...cp, root: Buffer.from(cp.root) }, { origin: 'log.example/ledger', size: 42, root: Buffer.from(root) });
  t.throws(() => openCheckpoint(note, parseVerifierKey(verifierKeyString(other.name, other.publicKey))), { code: 'ERR_CHECKPOINT_SIGNATURE' });
  const cosigned = `${note}— witness.example AAAAAAAAAAAA\n`;
  t.ok(verifyNote(cosigned, parseVerifierKey(verifierKeyString(signer.name, signer.publicKey))).ok, 'other signers\' lines are ignored');
  t.equal(parseCheckpointBody(`${body}extension line\n`).size, 42, 'extension lines are allowed');
  for (const bad of ['o\n01\nAAAA\n', 'o\n-1\n' + 'A'.repeat(43) + '=\n', 'o\n1\n', '\n1\n' + Buffer.alloc(32).toString('base64') + '\n', 'o\n1\nAAAA\n']) {
    t.throws(() => parseCheckpointBody(bad), { code: 'ERR_NOTE_MALFORMED' }, JSON.stringify(bad));
  }
  t.throws(() => signNote('no newline', signer), { code: 'ERR_NOTE_MALFORMED' });
});

t.test('keys whose base64 contains "+" round-trip', async (t) => {
  let found = 0;
  for (let i = 0; i < 64 && found < 5; i++) {
    const s = signerFromSeed('a.example/log', new Uint8Array(32).fill(i));
    const text = verifierKeyString(s.name, s.publicKey);
    if (text.split('+').length <= 3) continue;
    found++;
    t.same(Buffer.from(parseVerifierKey(text).publicKey), Buffer.from(s.publicKey), text);
  }
  t.ok(found > 0);
});
