/**
 * The AuditEvent search index: small derived sublevels over the ledger, written by Ledger.commit in the SAME
 * synced batch as each entry (LedgerOptions.entryOps), so a search reads only the keys of its matches, newest
 * first, and never scans the log. Layouts (docs/storage.md): `<value>|<pad(seq)>` → the one-byte PRESENT marker (db.ts).
 *
 * | sublevel        | value in the key                                                    |
 * | audit-patient   | `Patient/id` of entity[].patient and patients[]                      |
 * | audit-agent     | the agent's fhirUser reference, and `sub:<sub>` (who acted)         |
 * | audit-entity    | entity[].reference (`Type/id`, or `Type` for type-level events)     |
 * | audit-subtype   | the interaction code (read, create, search-type, ledger-read, …)    |
 * | audit-time      | the entry's ISO time (so date ranges are key ranges)                |
 */
import { bytesSublevel, pad, PRESENT_BYTES, SUBLEVELS, stringSublevel, writeBatch, type BatchOp, type Database, type Sublevel } from '../storage/db.ts';
import { parseEntry } from './entry.ts';
import type { Problem } from './fsck.ts';
import type { Ledger } from './log.ts';
import type { Entry } from './types.ts';

export type AuditKey = 'patient' | 'agent' | 'entity' | 'subtype' | 'time';

const NAMES: Record<AuditKey, string> = {
  patient: SUBLEVELS.auditPatient,
  agent: SUBLEVELS.auditAgent,
  entity: SUBLEVELS.auditEntity,
  subtype: SUBLEVELS.auditSubtype,
  time: SUBLEVELS.auditTime,
};

/** `|` cannot occur in references, ids, interaction codes or ISO times, so it cleanly ends the value. */
const SEP = '|';

/** The index values of an entry, per sublevel (pure: used for the ops and by tests). */
export function auditIndexValues(entry: Entry): Record<AuditKey, string[]> {
  const patients = new Set<string>();
  const entities = new Set<string>();
  for (const e of entry.entity ?? []) {
    entities.add(e.reference);
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

export class AuditIndex {
  readonly #levels: Record<AuditKey, Sublevel<string>>;
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
    this.#levels = Object.fromEntries(Object.entries(NAMES).map(([k, name]) => [k, stringSublevel(db, name)])) as Record<AuditKey, Sublevel<string>>;
  }

  /**
   * The rider for Ledger.commit: one put per index value, as root-level keys carrying the sublevel's prefix (the
   * same bytes on disk as a `sublevel:` op, at half the cost per op).
   */
  readonly ops = (entry: Entry): BatchOp[] => {
    const ops: BatchOp[] = [];
    const values = auditIndexValues(entry);
    const seq = pad(entry.seq);
    for (const key of Object.keys(values) as AuditKey[]) {
      const prefix = this.#levels[key].prefix;
      for (const value of values[key]) ops.push({ type: 'put', key: `${prefix}${value}${SEP}${seq}`, value: PRESENT_BYTES });
    }
    return ops;
  };

  /**
   * Indexes the entries a store holds from before this index existed (a log older than the AuditEvent view):
   * they form a prefix of the log, since every later entry was indexed in its own batch. One point read when
   * there is nothing to do.
   */
  async backfill(ledger: Ledger, chunk = 1000): Promise<number> {
    const subtype = this.#levels.subtype;
    let done = 0;
    // The first chunk is one entry: on an indexed store that is the only read.
    for (let start = 0, n = 1; start < ledger.size(); start += n, n = chunk) {
      const entries = await ledger.getEntries(start, Math.min(ledger.size(), start + n));
      const ops: BatchOp[] = [];
      for (const stored of entries) {
        const entry = parseEntry(stored.bytes, stored.seq);
        if ((await subtype.get(`${entry.interaction}${SEP}${pad(entry.seq)}`)) !== undefined) {
          if (ops.length) await writeBatch(this.#db, ops, { sync: true });
          return done;
        }
        ops.push(...this.ops(entry));
        done++;
      }
      await writeBatch(this.#db, ops, { sync: true });
    }
    return done;
  }

  /**
   * Problems of the index against the entries it derives from (fsck): every key an entry gives must be there,
   * and nothing else (equal counts, once every expected key is found). Streams the log in chunks.
   */
  async check(chunk = 1000): Promise<Problem[]> {
    const problems: Problem[] = [];
    // A store written without the index (a bare ledger, or one older than the index and not yet started since)
    // has no key at all: the server backfills it at start; there is nothing to hold against the entries yet.
    if ((await this.#levels.subtype.keys({ limit: 1 }).all()).length === 0) return problems;
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
        for (const op of this.ops(entry)) keys.push({ key: op.key as string, seq: entry.seq });
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
