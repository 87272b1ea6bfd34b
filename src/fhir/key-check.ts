/**
 * The check only the node's keys allow: every key-encryption key in the `kek` sublevel unwraps under the master
 * key, and every content version's wrapped data key unwraps under its KEK with the label its record gives (its KEK
 * name, address and, for keys wrapped since stamps, its lastUpdated and method: envelope.ts `dataKeyLabel`). Each
 * unwrap is AES-256-GCM, whose tag authenticates the wrapped bytes and the label, so a changed byte in a `kek`
 * value, a version's `wrappedKey`, `kek`, `lastUpdated` or `method` is found here, where the keyless checks
 * (store-check.ts, fsck.ts) see nothing wrong and a read would answer 500.
 *
 * No block is decrypted and no content is read: the check handles key material only, zeroes each data key once
 * unwrapped, and reports record names, never keys. Records are read in chunks from one snapshot; unwrapped KEKs
 * are kept in a bounded cache (a miss reads and unwraps the KEK again), so memory stays bounded.
 */
import type { KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { problemLog, type Problem } from '../ledger/fsck.ts';
import { bytesSublevel, jsonRecordProblem, parseJsonRecord, stringSublevel, SUBLEVELS, type Database } from '../storage/db.ts';
import { isKekName, unwrapStoredKek, type KeyStore } from '../storage/keyring.ts';
import { unwrapDataKey } from '../storage/sealed-store.ts';
import type { VersionRecord } from './repository.ts';

export interface KeyCheck {
  /** KEK records that unwrap. */
  keks: number;
  /** Content versions whose data key unwraps. */
  dataKeys: number;
  /** Of those, keys wrapped before stamps: their record's lastUpdated and method are not authenticated. */
  unstamped: number;
  /** Content versions under a patient KEK that is absent (the patient was erased): nothing to unwrap. */
  erased: number;
  problems: Problem[];
}

const CHUNK = 512;
const KEK_CACHE = 10_000;
const SCAN = { fillCache: false } as {};

export async function checkKeys(db: Database, keyStore: KeyStore, log: (line: string) => void = () => undefined): Promise<KeyCheck> {
  const kekStore = bytesSublevel(db, SUBLEVELS.kek);
  // Parsed here: a record that is not valid JSON is the records check's finding (store-check.ts), skipped here.
  const versions = stringSublevel(db, SUBLEVELS.version);
  const { problems, fail } = problemLog(log);
  const snapshot = db.snapshot();
  const options = { snapshot } as {};
  // lru-cache: a Map evicting its first key costs O(size) per eviction in V8 once it is full.
  const cache = new LRUCache<string, KeyObject>({ max: KEK_CACHE });
  /** KEKs that are stored but do not unwrap, and the absent node KEK: why, and how many versions each leaves unreadable. */
  const unreadable = new Map<string, { missing: boolean; versions: number }>();

  try {
    let keks = 0;
    for await (const [name, wrapped] of kekStore.iterator({ ...SCAN, snapshot } as {})) {
      if (!isKekName(name)) {
        fail('ERR_KEK_NAME', `kek/${name}`, 'a key-encryption key under a name that is neither node nor patient/<id>');
        continue;
      }
      // Only a failed authentication marks a record damaged; a key store that cannot answer fails the check.
      const key = await unwrapStoredKek(keyStore, name, wrapped);
      if (!key) unreadable.set(name, { missing: false, versions: 0 });
      else {
        keks++;
        cache.set(name, key);
      }
    }

    let dataKeys = 0;
    let unstamped = 0;
    let erased = 0;
    const checkChunk = async (chunk: Array<[string, VersionRecord]>) => {
      const missing = [...new Set(chunk.map(([, r]) => r.kek).filter((n): n is string => typeof n === 'string' && isKekName(n) && !cache.has(n) && !unreadable.has(n)))];
      const stored = missing.length > 0 ? await kekStore.getMany(missing, options) : [];
      const absent = new Set<string>();
      for (const [i, name] of missing.entries()) {
        const wrapped = stored[i];
        if (wrapped === undefined) absent.add(name);
        else {
          // Present in the snapshot and not marked unreadable: it unwrapped in the pass above (a cache miss).
          const key = await unwrapStoredKek(keyStore, name, wrapped);
          if (key) cache.set(name, key);
          else unreadable.set(name, { missing: false, versions: 0 });
        }
      }
      for (const [at, record] of chunk) {
        if (!record.cid) continue;
        const { kek, wrappedKey } = record;
        if (typeof kek !== 'string' || typeof wrappedKey !== 'string' || !isKekName(kek)) {
          fail('ERR_DATA_KEY_UNWRAP', at, 'the record has a block but names no valid KEK or wrapped key: the version cannot be read');
          continue;
        }
        const lost = unreadable.get(kek);
        if (lost) {
          lost.versions++;
          continue;
        }
        if (absent.has(kek)) {
          // A patient's KEK is deleted to erase the patient; the node KEK never is.
          if (kek === 'node') unreadable.set(kek, { missing: true, versions: 1 });
          else erased++;
          continue;
        }
        const { resourceType, id, versionId, lastUpdated, method } = record;
        const unwrapped = unwrapDataKey(cache.get(kek)!, { resourceType, id, versionId: String(versionId), kek, wrappedKey, lastUpdated, method });
        if (!unwrapped) {
          fail('ERR_DATA_KEY_UNWRAP', at, `the wrapped data key does not unwrap under KEK ${kek} with the label the record gives: its wrappedKey, kek, lastUpdated or method was altered, and the version cannot be read`);
          continue;
        }
        unwrapped.key.fill(0);
        dataKeys++;
        if (!unwrapped.stamped) unstamped++;
      }
    };
    let chunk: Array<[string, VersionRecord]> = [];
    for await (const [at, text] of versions.iterator({ ...SCAN, snapshot } as {})) {
      const record = parseJsonRecord(text);
      if (jsonRecordProblem(record) !== undefined) continue;
      chunk.push([at, record as VersionRecord]);
      if (chunk.length === CHUNK) await checkChunk(chunk.splice(0));
    }
    await checkChunk(chunk);

    for (const [name, { missing, versions: count }] of unreadable) {
      const why = missing ? 'is missing' : 'does not unwrap under the master key: its kek record was altered or damaged';
      fail(missing ? 'ERR_KEK_MISSING' : 'ERR_KEK_UNWRAP', `kek/${name}`, `the key-encryption key ${name} ${why}; ${count} version(s) under it cannot be read`);
    }
    log(
      `keys: ${keks} KEKs unwrap under the master key, ${dataKeys} data keys under their KEKs` +
        (unstamped > 0 ? ` (${unstamped} wrapped before stamps: their lastUpdated and method are not authenticated)` : '') +
        (erased > 0 ? `; ${erased} versions under erased patient keys` : ''),
    );
    return { keks, dataKeys, unstamped, erased, problems };
  } finally {
    await snapshot.close();
  }
}
