/**
 * A unit of work: the locks a request holds, the versions it writes and the audit entries it appends, committed
 * through the ledger as ONE synced batch. A single interaction commits at once (immediate); a transaction Bundle
 * collects every entry's work and commits it all together at the end (deferred), so it is all-or-nothing.
 */
import { FhirError } from '../errors.ts';
import type { Appended, EntryDraft, LedgerWriter } from '../ledger/types.ts';
import type { BatchOp } from '../storage/db.ts';
import type { KeyedLocks } from './locks.ts';
import type { PreparedVersion, VersionRecord } from './repository.ts';

interface Pending {
  entry: EntryDraft;
  versions: PreparedVersion[];
}

export class WorkUnit {
  private readonly held = new Set<string>();
  private readonly releases: Array<() => void> = [];
  private readonly pending: Pending[] = [];
  /** Versions written earlier in this unit, by `Type/id`: later entries of a transaction see them. */
  private readonly overlay = new Map<string, PreparedVersion>();
  /** Extra index ops for the next commit (the bulk importer's progress record rides in the same batch). */
  private readonly attached: BatchOp[] = [];

  private readonly ledger: LedgerWriter;
  private readonly locks: KeyedLocks;
  readonly deferred: boolean;

  constructor(ledger: LedgerWriter, locks: KeyedLocks, deferred: boolean) {
    this.ledger = ledger;
    this.locks = locks;
    this.deferred = deferred;
  }

  /** Locks `Type/id` keys until the unit ends. Re-entrant for keys the unit already holds. */
  async lock(keys: string[]): Promise<void> {
    const fresh = keys.filter((k) => !this.held.has(k));
    if (fresh.length === 0) return;
    this.releases.push(await this.locks.acquire(fresh));
    for (const key of fresh) this.held.add(key);
  }

  /** The version this unit has already written for `Type/id`, if any (transactions read their own writes). */
  written(key: string): PreparedVersion | undefined {
    return this.overlay.get(key);
  }

  /** Head as this unit sees it: its own pending write first, then the stored head. */
  async head(key: string, stored: () => Promise<VersionRecord | undefined>): Promise<VersionRecord | undefined> {
    return this.overlay.get(key)?.record ?? (await stored());
  }

  /**
   * Records an audit entry together with the versions it describes. Immediate units make it durable before
   * returning (fail-closed: if the ledger cannot append, this throws and the caller answers with an error).
   */
  async record(entry: EntryDraft, versions: PreparedVersion[] = []): Promise<void> {
    for (const v of versions) this.overlay.set(`${v.record.resourceType}/${v.record.id}`, v);
    this.pending.push({ entry, versions });
    if (!this.deferred) await this.flush();
  }

  /** Adds ops to this unit's next commit, so they become durable exactly when (and only if) it does. */
  attach(ops: BatchOp[]): void {
    this.attached.push(...ops);
  }

  /** Commits everything pending as one ledger commit (one synced batch). */
  async flush(extra: EntryDraft[] = []): Promise<Appended[]> {
    const pending = this.pending.splice(0);
    if (pending.length === 0 && extra.length === 0) return [];
    const attached = this.attached.splice(0);
    const entries = [...pending.map((p) => p.entry), ...extra];
    try {
      return await this.ledger.commit({
        entries,
        ops: (appended) => {
          const ops: BatchOp[] = [];
          pending.forEach((p, i) => {
            for (const version of p.versions) ops.push(...version.ops(appended[i]!));
          });
          ops.push(...attached);
          return ops;
        },
      });
    } catch (err) {
      // Fail closed: without a durable audit entry the interaction did not happen.
      throw new FhirError('The audit ledger could not record this request; it was not carried out', {
        status: 503,
        code: 'ERR_LEDGER_UNAVAILABLE',
        issueType: 'transient',
        headers: { 'retry-after': '1' },
        cause: err,
      });
    }
  }

  /** Drops everything not yet committed (a failed transaction) without writing it. */
  discard(): void {
    this.pending.length = 0;
    this.overlay.clear();
    this.attached.length = 0;
  }

  release(): void {
    for (const release of this.releases.splice(0)) release();
    this.held.clear();
  }
}
