/**
 * The importer's progress record, in the node's own database (sublevel `import-progress`, key = a keyed hash of the
 * file's absolute path, because file names can carry patient names — Synthea's do): which files are done, and how far a batch Bundle (entries) or an NDJSON file (lines) got.
 * A transaction file's record is written in the SAME synced batch as its resources (WorkUnit.attach), so after a
 * crash a file is either fully stored and marked done, or neither; an NDJSON chunk's commit carries the line it
 * reached, and each batch entry's commit an `<path>\x00<entry index>` key (batch entries commit concurrently, in
 * any order). A rerun skips what is recorded.
 */
import type { BatchOp, Database, Sublevel } from '../storage/db.ts';
import { jsonSublevel } from '../storage/db.ts';

export const IMPORT_PROGRESS_SUBLEVEL = 'import-progress';

export interface FileProgress {
  /** Size of the file when it was (partly) imported: a file that changed since is imported from the start. */
  size: number;
  /** Every unit of the file was consumed (stored or reported as failed). */
  done?: true;
  /** NDJSON lines consumed so far (1-based number of the last one). Batch entries have keys of their own. */
  units?: number;
}

export class ProgressStore {
  private readonly level: Sublevel<FileProgress>;
  private readonly keyOf: (file: string) => string;

  /** `keyOf` turns a path into its key: a keyed hash, never the path itself. */
  constructor(db: Database, keyOf: (file: string) => string) {
    this.level = jsonSublevel<FileProgress>(db, IMPORT_PROGRESS_SUBLEVEL);
    this.keyOf = keyOf;
  }

  /** Progress of a file of this size; a record for a different size is stale and ignored. */
  async get(file: string, size: number): Promise<FileProgress | undefined> {
    const record = await this.level.get(this.keyOf(file));
    return record && record.size === size ? record : undefined;
  }

  op(file: string, value: FileProgress): BatchOp {
    return { type: 'put', sublevel: this.level, key: this.keyOf(file), value } as BatchOp;
  }

  async put(file: string, value: FileProgress): Promise<void> {
    await this.level.put(this.keyOf(file), value);
  }

  /** Marks one batch entry done (in the entry's own commit). */
  entryOp(file: string, index: number): BatchOp {
    return { type: 'put', sublevel: this.level, key: `${this.keyOf(file)}\x00${index}`, value: { size: -1 } } as BatchOp;
  }

  /** Indexes of the batch entries of `file` already committed. */
  async doneEntries(file: string): Promise<Set<number>> {
    const done = new Set<number>();
    const prefix = this.keyOf(file);
    for await (const key of this.level.keys({ gt: `${prefix}\x00`, lt: `${prefix}\x01` })) done.add(Number(key.slice(prefix.length + 1)));
    return done;
  }

  /** Starts a file afresh: no per-entry records, nothing done. */
  async reset(file: string, size: number): Promise<void> {
    const key = this.keyOf(file);
    await this.level.clear({ gt: `${key}\x00`, lt: `${key}\x01` });
    await this.level.put(key, { size });
  }

  /** Marks a file done and drops its per-entry records. */
  async finish(file: string, size: number): Promise<void> {
    const key = this.keyOf(file);
    await this.level.clear({ gt: `${key}\x00`, lt: `${key}\x01` });
    await this.level.put(key, { size, done: true });
  }

  async clear(): Promise<void> {
    await this.level.clear();
  }
}
