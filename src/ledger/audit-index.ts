/**
 * The AuditEvent search index: small derived sublevels over the ledger, written by Ledger.commit in the SAME
 * synced batch as each entry (LedgerOptions.entryOps), so a search reads only the keys of its matches, newest
 * first, and never scans the log. Layouts (docs/storage.md): `<value>|<pad(seq)>` → the one-byte PRESENT marker (db.ts).
 *
 * | sublevel        | value in the key                                                    |
 * | audit-patient   | `Patient/id` of entity[].patient and patients[]                      |
 * | audit-agent     | the agent's fhirUser reference, and `sub:<sub>` (who acted)         |
 * | audit-entity    | entity[].reference (`Type/id`, or `Type` for type-level events), and the type of each |
 * | audit-subtype   | the interaction code (read, create, search-type, ledger-read, …)    |
 * | audit-time      | the entry's ISO time (so date ranges are key ranges)                |
 *
 * `audit-meta` holds `format`: the AUDIT_INDEX_FORMAT the index was built under. The index needs no key to
 * rebuild, so a server that finds another format rebuilds it at start (AuditIndex.upgrade) instead of refusing.
 */
import { bytesSublevel, jsonSublevel, pad, PRESENT_BYTES, SUBLEVELS, stringSublevel, writeBatch, type BatchOp, type Database, type Sublevel } from '../storage/db.ts';
import { parseEntry } from './entry.ts';
import type { Problem } from './fsck.ts';
import type { Entry } from './types.ts';

export type AuditKey = 'patient' | 'agent' | 'entity' | 'subtype' | 'time';

/**
 * What the index holds for an entry. Bump it with every change to auditIndexValues, and add a row to the table
 * in docs/storage.md ("AuditEvent search index").
 * 1: stores written before the format was recorded (no marker).
 * 2: audit-entity also holds the type of every `Type/id` entity, so `entity=Observation` finds the events that
 *    touched any Observation; the marker itself.
 */
export const AUDIT_INDEX_FORMAT = 2;
const FORMAT_KEY = 'format';
/** The marker's value while a rebuild is under way: an interrupted one is started over at the next start. */
const REBUILDING = 'rebuilding';

const NAMES: Record<AuditKey, string> = {
  patient: SUBLEVELS.auditPatient,
  agent: SUBLEVELS.auditAgent,
  entity: SUBLEVELS.auditEntity,
  subtype: SUBLEVELS.auditSubtype,
  time: SUBLEVELS.auditTime,
};

/** `|` cannot occur in references, ids, interaction codes or ISO times, so it cleanly ends the value. */
const SEP = '|';

/** The index values of an entry, per sublevel, under the rules of `format` (pure: used for the ops, by fsck and by tests). */
export function auditIndexValues(entry: Entry, format = AUDIT_INDEX_FORMAT): Record<AuditKey, string[]> {
  const patients = new Set<string>();
  const entities = new Set<string>();
  for (const e of entry.entity ?? []) {
    entities.add(e.reference);
    if (format >= 2 && e.reference.includes('/')) entities.add(e.reference.slice(0, e.reference.indexOf('/')));
    if (e.patient) patients.add(e.patient);
  }
  for (const p of entry.patients ?? []) patients.add(p.includes('/') ? p : `Patient/${p}`);
  const agents: string[] = [];
  if (entry.agent.fhirUser) agents.push(entry.agent.fhirUser);
  if (entry.agent.sub) agents.push(`sub:${entry.agent.sub}`);
  const clean = (values: Iterable<string>) => [...values].filter((v) => v !== '' && !v.includes(SEP));
  return {
    patient: clean(patients),
    agent: clean(agents),
    entity: clean(entities),
    subtype: clean([entry.interaction]),
    time: [entry.time],
  };
}

/** What `audit-meta/format` says: a format number, a rebuild under way, or nothing (format 1, or no index yet). */
export type AuditIndexState = { state: 'format'; format: number } | { state: 'rebuilding' } | { state: 'unmarked' };

export class AuditIndex {
  readonly #levels: Record<AuditKey, Sublevel<string>>;
  readonly #meta: Sublevel<unknown>;
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
    this.#levels = Object.fromEntries(Object.entries(NAMES).map(([k, name]) => [k, stringSublevel(db, name)])) as Record<AuditKey, Sublevel<string>>;
    this.#meta = jsonSublevel<unknown>(db, SUBLEVELS.auditMeta);
  }

  /**
   * The rider for Ledger.commit: one put per index value, as root-level keys carrying the sublevel's prefix (the
   * same bytes on disk as a `sublevel:` op, at half the cost per op). A log indexed from its first entry records
   * the format with that entry.
   */
  readonly ops = (entry: Entry): BatchOp[] => {
    const ops = this.#keyOps(entry, AUDIT_INDEX_FORMAT);
    if (entry.seq === 0) ops.push(this.#formatOp(AUDIT_INDEX_FORMAT));
    return ops;
  };

  #keyOps(entry: Entry, format: number): BatchOp[] {
    const ops: BatchOp[] = [];
    const values = auditIndexValues(entry, format);
    const seq = pad(entry.seq);
    for (const key of Object.keys(values) as AuditKey[]) {
      const prefix = this.#levels[key].prefix;
      for (const value of values[key]) ops.push({ type: 'put', key: `${prefix}${value}${SEP}${seq}`, value: PRESENT_BYTES });
    }
    return ops;
  }

  #formatOp(value: number | typeof REBUILDING): BatchOp {
    return { type: 'put', sublevel: this.#meta, key: FORMAT_KEY, value };
  }

  async state(): Promise<AuditIndexState> {
    const found = await this.#meta.get(FORMAT_KEY);
    if (found === REBUILDING) return { state: 'rebuilding' };
    if (typeof found === 'number') return { state: 'format', format: found };
    return { state: 'unmarked' };
  }

  /**
   * Brings the index up to date with the entries before the server serves: when it was built under another
   * format (an older server's: `entity=Type` would miss instances), holds entries from before the index existed
   * (no marker), or a rebuild was interrupted, it is cleared and rebuilt from every stored entry, which needs no
   * key. Returns the number of entries indexed: 0, after one point read, when the index is current. The marker
   * says `rebuilding` until the last batch records the format, so a crash midway starts over at the next start.
   * An entry too broken to parse is skipped, as check() skips it: it is the ledger verification's finding.
   */
  async upgrade(options: { chunk?: number; log?: (message: string) => void } = {}): Promise<number> {
    const chunk = options.chunk ?? 1000;
    const state = await this.state();
    if (state.state === 'format' && state.format === AUDIT_INDEX_FORMAT) return 0;
    const entries = bytesSublevel(this.#db, SUBLEVELS.ledgerEntry);
    if ((await entries.keys({ limit: 1 }).all()).length === 0) {
      await writeBatch(this.#db, [this.#formatOp(AUDIT_INDEX_FORMAT)], { sync: true });
      return 0;
    }
    const was = state.state === 'format' ? `format ${state.format}` : state.state === 'rebuilding' ? 'an interrupted rebuild' : 'format 1 or none';
    options.log?.(`AuditEvent index: built under ${was}, this server writes format ${AUDIT_INDEX_FORMAT}: rebuilding it from the ledger entries`);
    await writeBatch(this.#db, [this.#formatOp(REBUILDING)], { sync: true });
    for (const level of Object.values(this.#levels)) await level.clear();
    let done = 0;
    let ops: BatchOp[] = [];
    let pending = 0;
    for await (const [key, bytes] of entries.iterator({ fillCache: false } as {})) {
      let entry: Entry;
      try {
        entry = parseEntry(bytes, Number(key));
      } catch {
        continue;
      }
      ops.push(...this.#keyOps(entry, AUDIT_INDEX_FORMAT));
      done++;
      if (++pending === chunk) {
        await writeBatch(this.#db, ops, { sync: true });
        ops = [];
        pending = 0;
      }
    }
    ops.push(this.#formatOp(AUDIT_INDEX_FORMAT));
    await writeBatch(this.#db, ops, { sync: true });
    return done;
  }

  /**
   * Problems of the index against the entries it derives from (fsck), under the rules of the format it records:
   * every key an entry gives must be there, and nothing else (equal counts, once every expected key is found).
   * Streams the log in chunks. A store whose index predates the marker is held to format 1, which is what the
   * servers before it wrote; the server rebuilds it at its next start.
   */
  async check(chunk = 1000): Promise<Problem[]> {
    const problems: Problem[] = [];
    const state = await this.state();
    // A rebuild was interrupted: the index is neither the old one nor the new one yet, and the next start
    // rebuilds it from scratch; there is nothing exact to hold against the entries.
    if (state.state === 'rebuilding') return problems;
    let format = 1;
    if (state.state === 'format') {
      if (state.format > AUDIT_INDEX_FORMAT || state.format < 1 || !Number.isInteger(state.format)) {
        return [{ code: 'ERR_AUDIT_INDEX_FORMAT', message: `the AuditEvent index records format ${state.format}, which this program does not know (it knows 1 to ${AUDIT_INDEX_FORMAT})` }];
      }
      format = state.format;
    } else if ((await this.#levels.subtype.keys({ limit: 1 }).all()).length === 0) {
      // A store written without the index (a bare ledger, or one older than the index and not yet started since)
      // has no key at all: the server builds it at start; there is nothing to hold against the entries yet.
      return problems;
    }
    const entries = bytesSublevel(this.#db, SUBLEVELS.ledgerEntry);
    let expected = 0;
    let batch: Array<[string, Uint8Array]> = [];
    const checkBatch = async () => {
      const keys: Array<{ key: string; seq: number }> = [];
      for (const [k, bytes] of batch.splice(0)) {
        let entry: Entry;
        try {
          entry = parseEntry(bytes, Number(k));
        } catch {
          continue; // an invalid entry is the ledger verifier's finding
        }
        for (const op of this.#keyOps(entry, format)) keys.push({ key: op.key as string, seq: entry.seq });
      }
      expected += keys.length;
      const found = await this.#db.getMany(keys.map((k) => k.key));
      found.forEach((value, i) => {
        if (value === undefined) problems.push({ code: 'ERR_AUDIT_INDEX_MISSING', index: keys[i]!.seq, message: `audit index key ${keys[i]!.key} is missing` });
      });
    };
    for await (const pair of entries.iterator({ fillCache: false } as {})) {
      batch.push(pair);
      if (batch.length === chunk) await checkBatch();
    }
    await checkBatch();
    let stored = 0;
    for (const level of Object.values(this.#levels)) for await (const _ of level.keys({ fillCache: false } as {})) stored++;
    if (stored !== expected) problems.push({ code: 'ERR_AUDIT_INDEX_EXTRA', message: `the AuditEvent index holds ${stored} keys where the entries give ${expected}` });
    return problems;
  }

  /**
   * Seqs whose `key` value equals `value` (or, for time, lies in [from, to)), newest first, below `before`.
   * An async iterator, so the caller stops reading once its page is full.
   */
  async *seqs(key: AuditKey, range: { eq: string } | { gte: string; lt: string }, before = Number.MAX_SAFE_INTEGER): AsyncGenerator<number> {
    const level = this.#levels[key];
    let options: { gte: string; lt: string };
    if ('eq' in range) {
      options = { gte: `${range.eq}${SEP}`, lt: `${range.eq}${SEP}${pad(before)}` };
    } else {
      options = { gte: range.gte, lt: range.lt };
    }
    for await (const k of level.keys({ ...options, reverse: true })) {
      const seq = Number(k.slice(k.lastIndexOf(SEP) + 1));
      if ('eq' in range || seq < before) yield seq;
    }
  }
}
