/**
 * The comparison for the audit's cost: sealed-fhir exactly as `npm start` builds it, except that a read or vread
 * that writes nothing returns without appending its ledger entry (and so without waiting for a synced batch).
 * Token check, index lookup, block fetch, CID check and decryption all still happen, and every write is still
 * audited. `read / read-unaudited` is then what auditing a read costs. Never used outside the bench.
 */
import type { Appended, CommitRequest, LedgerWriter } from '../src/ledger/types.ts';
import { serveOrExit } from '../src/serve.ts';

const UNAUDITED = new Set(['read', 'vread']);

function skipReadAudit(ledger: LedgerWriter): LedgerWriter {
  return {
    commit(request: CommitRequest): Promise<Appended[]> {
      if (!request.entries.every((entry) => UNAUDITED.has(entry.interaction))) return ledger.commit(request);
      const time = new Date().toISOString();
      const appended = request.entries.map(() => ({ seq: -1, leafHash: '', time }));
      // A read that carries index changes (none do today) must not lose them: only a pure read skips the ledger.
      if ((request.ops?.(appended) ?? []).length > 0) return ledger.commit(request);
      return Promise.resolve(appended);
    },
  };
}

serveOrExit({ workLedger: skipReadAudit });
