/**
 * Offline check of the FHIR records against the ledger, from read access alone (no key needed): every version
 * record must be recorded by the ledger entry at its `t` (same reference, version, CID, content HMAC and patient
 * compartment, and the method that entry's interaction writes), a content version's `kek` must name its
 * compartment's key, every head must be the newest version record of its resource, and both history sublevels must
 * hold exactly one pointer per version, at its `t`. What only the keys can check (that each wrapped key unwraps,
 * and with it each record's lastUpdated) is key-check.ts. The ledger verifies its own entries (src/ledger/verify.ts); this extends that
 * trust to the records the server reads through, so a changed byte in a head, version or history record is
 * found by `npm run verify -- --data-dir` and at start, not served. Memory stays bounded: records are read in
 * chunks and the entries they name are point reads.
 */
import { isDeepStrictEqual } from 'node:util';
import { bytesSublevel, jsonRecordProblem, NOT_JSON, pad, parseJsonRecord, stringSublevel, SUBLEVELS, type Database } from '../storage/db.ts';
import { parseEntry } from '../ledger/entry.ts';
import { problemLog, type Problem } from '../ledger/fsck.ts';
import { versionKey, type VersionRecord } from './repository.ts';

interface HistoryPointer {
  resourceType: string;
  id: string;
  versionId: number;
}

export interface RecordCheck {
  versions: number;
  heads: number;
  problems: Problem[];
}

/** The method a version record holds, by the interaction of the entry that wrote it. */
const METHOD_OF: Record<string, string> = { create: 'POST', update: 'PUT', patch: 'PATCH', delete: 'DELETE' };

const CHUNK = 512;
const SCAN = { fillCache: false } as {};

export async function checkRecords(db: Database, log: (line: string) => void = () => undefined): Promise<RecordCheck> {
  // Read as strings and parsed here (parseJsonRecord): a record that is not valid JSON is a problem named by its
  // sublevel and key, where the JSON encoding would end the whole check with "Could not decode value".
  const versions = stringSublevel(db, SUBLEVELS.version);
  const heads = stringSublevel(db, SUBLEVELS.head);
  const entries = bytesSublevel(db, SUBLEVELS.ledgerEntry);
  const typeHistory = stringSublevel(db, SUBLEVELS.typeHistory);
  const systemHistory = stringSublevel(db, SUBLEVELS.systemHistory);
  const { problems, fail } = problemLog(log);
  const snapshot = db.snapshot();
  const read = { ...SCAN, snapshot };
  try {
    let versionCount = 0;
    let resources = 0;
    // The newest version seen of the resource whose versions are being read (they are contiguous in key order);
    // `record` is undefined when that version's record does not decode (a problem already).
    let newest: { key: string; record: VersionRecord | undefined } | undefined;
    const newestByResource: Array<{ key: string; record: VersionRecord | undefined }> = [];
    const checkChunk = async (chunk: Array<[string, VersionRecord]>) => {
      const ts = chunk.map(([, r]) => (Number.isSafeInteger(r.t) && r.t >= 0 ? pad(r.t) : ''));
      const typeKeys = chunk.map(([, r], i) => `${r.resourceType}/${ts[i]}`);
      const [recorded, typeTexts, systemTexts] = await Promise.all([
        entries.getMany(ts, { snapshot } as {}),
        typeHistory.getMany(typeKeys, { snapshot } as {}),
        systemHistory.getMany(ts, { snapshot } as {}),
      ]);
      const typePointers = typeTexts.map(parseJsonRecord);
      const systemPointers = systemTexts.map(parseJsonRecord);
      chunk.forEach(([key, record], i) => {
        if (key !== versionKey(record.resourceType, record.id, record.versionId)) {
          return fail('ERR_VERSION_RECORD', key, 'the record names another version than its key');
        }
        const bytes = recorded[i];
        if (bytes === undefined) return fail('ERR_VERSION_UNRECORDED', key, `no ledger entry ${record.t} records this version`);
        let entry;
        try {
          entry = parseEntry(bytes, record.t);
        } catch (err) {
          return fail('ERR_VERSION_UNRECORDED', key, `ledger entry ${record.t} is invalid: ${(err as Error).message}`);
        }
        const entity = entry.entity?.find((e) => e.reference === `${record.resourceType}/${record.id}` && e.version === String(record.versionId));
        if (!entity) return fail('ERR_VERSION_UNRECORDED', key, `ledger entry ${record.t} does not record this version`);
        if (entity.cid !== record.cid || entity.hmac !== record.hmac || Boolean(record.deleted) === Boolean(record.cid)) {
          return fail('ERR_VERSION_MISMATCH', key, `the record's block or content hash differs from ledger entry ${record.t}`);
        }
        // Each version is written by its own interaction's entry (a transaction's too), and sealed under its compartment's KEK.
        if (entity.patient !== (record.patient === undefined ? undefined : `Patient/${record.patient}`)) {
          return fail('ERR_VERSION_MISMATCH', key, `the record's patient compartment differs from ledger entry ${record.t}`);
        }
        if (METHOD_OF[entry.interaction] !== record.method) {
          return fail('ERR_VERSION_MISMATCH', key, `the record's method ${JSON.stringify(record.method)} is not what ledger entry ${record.t} (${entry.interaction}) writes`);
        }
        if (record.cid && record.kek !== (record.patient === undefined ? 'node' : `patient/${record.patient}`)) {
          return fail('ERR_VERSION_KEK', key, "the record's kek is not the key-encryption key of its compartment");
        }
        if (typePointers[i] === NOT_JSON) return fail('ERR_HISTORY_MISMATCH', key, `type-history ${typeKeys[i]}: the stored pointer is not valid JSON`);
        if (systemPointers[i] === NOT_JSON) return fail('ERR_HISTORY_MISMATCH', key, `system-history ${ts[i]}: the stored pointer is not valid JSON`);
        const pointer: HistoryPointer = { resourceType: record.resourceType, id: record.id, versionId: record.versionId };
        if (!isDeepStrictEqual(typePointers[i], pointer) || !isDeepStrictEqual(systemPointers[i], pointer)) {
          fail('ERR_HISTORY_MISMATCH', key, `the history pointers at ${record.t} do not name this version`);
        }
      });
    };
    let chunk: Array<[string, VersionRecord]> = [];
    const flushNewest = async (force: boolean) => {
      if (newestByResource.length < CHUNK && !force) return;
      // A resource whose newest version does not decode has no record to hold its head to (that version is the problem).
      const batch = newestByResource.splice(0).filter((n): n is { key: string; record: VersionRecord } => n.record !== undefined);
      const headKeys = batch.map(({ record }) => `${record.resourceType}/${record.id}`);
      const stored = await heads.getMany(headKeys, { snapshot } as {});
      batch.forEach(({ key, record }, i) => {
        const head = parseJsonRecord(stored[i]);
        if (head === NOT_JSON) fail('ERR_HEAD_MISMATCH', key, `head ${headKeys[i]}: the stored record is not valid JSON`);
        else if (!isDeepStrictEqual(head, record)) fail('ERR_HEAD_MISMATCH', key, 'the head is not the newest version record');
      });
    };
    for await (const [key, text] of versions.iterator(read)) {
      versionCount++;
      const parsed = parseJsonRecord(text);
      const damage = jsonRecordProblem(parsed);
      if (damage) fail('ERR_VERSION_RECORD', key, `version ${key}: the stored record ${damage}`);
      const record = damage ? undefined : (parsed as VersionRecord);
      const resource = key.slice(0, key.lastIndexOf('/'));
      const sameResource = newest !== undefined && newest.key.slice(0, newest.key.lastIndexOf('/')) === resource;
      if (!sameResource) resources++;
      if (newest && !sameResource) newestByResource.push(newest);
      newest = { key, record };
      if (record) chunk.push([key, record]);
      if (chunk.length === CHUNK) await checkChunk(chunk.splice(0));
      await flushNewest(false);
    }
    if (newest) newestByResource.push(newest);
    await checkChunk(chunk);
    await flushNewest(true);

    // Every version has its own pointer and head; equal counts then mean nothing else is there.
    let headCount = 0;
    for await (const _ of heads.keys(read)) headCount++;
    let typeCount = 0;
    for await (const _ of typeHistory.keys(read)) typeCount++;
    let systemCount = 0;
    for await (const _ of systemHistory.keys(read)) systemCount++;
    if (headCount !== resources) fail('ERR_HEAD_EXTRA', 'head', `${headCount} heads for ${resources} resources with versions`);
    if (typeCount !== versionCount) fail('ERR_HISTORY_EXTRA', 'type-history', `${typeCount} pointers for ${versionCount} versions`);
    if (systemCount !== versionCount) fail('ERR_HISTORY_EXTRA', 'system-history', `${systemCount} pointers for ${versionCount} versions`);
    log(`records: ${versionCount} versions and ${headCount} heads checked against the ledger`);
    return { versions: versionCount, heads: headCount, problems };
  } finally {
    await snapshot.close();
  }
}
