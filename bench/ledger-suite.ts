/**
 * The ledger's part of `npm run bench`, measured in the bench process after the HTTP servers have stopped:
 * durable appends under 64 writers, full verification and inclusion proofs, each with its same-run baseline.
 */
import type { InProcessResult } from './scenario.ts';

export interface LedgerBench {
  name: string;
  describe(quick: boolean): string;
  run(options: { quick: boolean; dataParent: string }): Promise<InProcessResult[]>;
}

export const ledgerBenches: LedgerBench[] = [];
export const ledgerBenchNames = ledgerBenches.map((b) => b.name);
