/**
 * Bulk export jobs (FHIR Bulk Data Access, https://hl7.org/fhir/uv/bulkdata/export.html). A job is only its
 * parameters and its point in time: files are written while they are downloaded, from the store as it stood at
 * that point (Repository.versionsAt), so no plaintext ever lands on disk and a job costs nothing until it is read.
 */
import { jsonSublevel, SUBLEVELS, type Database, type Sublevel } from '../storage/db.ts';
import { KeyedLocks } from './locks.ts';

export interface ExportJob {
  id: string;
  /**
   * `system` ([base]/$export), `patient` ([base]/Patient/$export: the Patient compartment only) or `group`
   * ([base]/Group/[id]/$export: the compartments of the group's patients).
   */
  level: 'system' | 'patient' | 'group';
  /** Group level: the ids of the group's active Patient members at the kick-off. */
  patients?: string[];
  types: string[];
  /** Only versions updated at or after this instant. */
  since?: string;
  /** Ledger index of the kick-off: the files show the store as it stood then. */
  at: number;
  /** The manifest's transactionTime (the kick-off's instant). */
  transactionTime: string;
  /** The kick-off request as the manifest repeats it. */
  request: string;
  /** Who may poll, download and cancel (issuer and subject of the kick-off's token). */
  owner: string;
  /**
   * The types whose files hold resources (the manifest's `output`), found on the first poll and kept: the files
   * show the store at `at`, so the answer never changes.
   */
  output?: string[];
}

export class ExportJobs {
  readonly #jobs: Sublevel<ExportJob>;
  /** Keeps a job's update and its deletion apart, so that a poll never brings back a job deleted meanwhile. */
  readonly #locks = new KeyedLocks();

  constructor(db: Database) {
    this.#jobs = jsonSublevel<ExportJob>(db, SUBLEVELS.exportJob);
  }

  async put(job: ExportJob): Promise<void> {
    await this.#jobs.put(job.id, job);
  }

  async get(id: string): Promise<ExportJob | undefined> {
    return this.#jobs.get(id);
  }

  /** Records the types whose files hold resources, if the job is still there. */
  async setOutput(id: string, output: string[]): Promise<void> {
    const release = await this.#locks.acquire([id]);
    try {
      const job = await this.#jobs.get(id);
      if (job) await this.#jobs.put(id, { ...job, output });
    } finally {
      release();
    }
  }

  async delete(id: string): Promise<void> {
    const release = await this.#locks.acquire([id]);
    try {
      await this.#jobs.del(id);
    } finally {
      release();
    }
  }
}
