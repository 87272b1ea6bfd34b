/** Messages between the analysis pool and its worker threads (structured-cloned; plaintext buffers transferred). */
import type { Issue, IssueType } from '../../errors.ts';
import type { Analysis } from './analyze.ts';

export interface WorkerSettings {
  profilesDir: string;
  maxDepth: number;
  baseUrl: string | undefined;
  /** The content-hash key bytes (index values are its HMACs); the worker zeroes its copy once imported. */
  hashKey: Uint8Array;
}

export interface WorkerRequest {
  id: number;
  resource: unknown;
  options: unknown;
}

export interface WorkerReply {
  id: number;
  analysis?: Analysis;
  error?: {
    message: string;
    fhir?: { status: number; code: string; issueType: IssueType; issues: Issue[]; headers: Record<string, string> };
  };
}
