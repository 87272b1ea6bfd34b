/**
 * Bulk export jobs (FHIR Bulk Data Access, https://hl7.org/fhir/uv/bulkdata/export.html). A job is only its
 * parameters and its point in time: files are written while they are downloaded, from the store as it stood at
 * that point (Repository.versionsAt), so no plaintext ever lands on disk and a job costs nothing until it is read.
 */
import { jsonSublevel, SUBLEVELS, type Database, type Sublevel } from '../storage/db.ts';

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
}

export class ExportJobs {
  readonly #jobs: Sublevel<ExportJob>;

  constructor(db: Database) {
    this.#jobs = jsonSublevel<ExportJob>(db, SUBLEVELS.exportJob);
  }

  async put(job: ExportJob): Promise<void> {
    await this.#jobs.put(job.id, job);
  }

  async get(id: string): Promise<ExportJob | undefined> {
    return this.#jobs.get(id);
  }

  async delete(id: string): Promise<void> {
    await this.#jobs.del(id);
  }
}
