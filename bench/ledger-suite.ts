/**
 * The ledger's part of `npm run bench`, measured in the bench process after the HTTP servers have stopped (they
 * must not share the cores with it): durable appends under 64 concurrent writers as the server makes them (with
 * the AuditEvent index riders and checkpoints), full verification and inclusion proofs of a generated log, each
 * beside raw SHA-256 over the same entry bytes in the same run. The figures come from bench/ledger-append.ts and
 * bench/ledger-scale.ts, which also run on their own with more options.
 */
import { benchLedgerAppend } from './ledger-append.ts';
import { benchLedgerScale } from './ledger-scale.ts';
import type { Check, InProcessResult } from './scenario.ts';

export interface LedgerBench {
  name: string;
  describe(quick: boolean): string;
  run(options: { quick: boolean; dataParent: string }): Promise<InProcessResult[]>;
}

const appendSeconds = (quick: boolean) => (quick ? 1 : 5);
const scaleEntries = (quick: boolean) => (quick ? 20_000 : 200_000);

export const ledgerBenches: LedgerBench[] = [
  {
    name: 'ledger-append',
    describe: (quick) => `64 writers, ${appendSeconds(quick)} s per variant (bare ledger, with index riders, with riders and checkpoints)`,
    async run({ quick, dataParent }) {
      const r = await benchLedgerAppend({ seconds: appendSeconds(quick), writers: 64, dataParent });
      const baseline = { name: 'SHA-256 per entry', rate: r.sha256.leafHashesPerSecond };
      return r.variants.map((v) => ({
        name: v.name === 'riders+checkpoints' ? 'ledger-append' : `ledger-append (${v.name})`,
        description: `durable appends/s, 64 writers each waiting for its synced batch (${v.name === 'ledger' ? 'entries and Merkle hashes only' : v.name === 'riders' ? 'with the AuditEvent index' : 'as the server writes them: AuditEvent index and signed checkpoints'}); ${v.entriesPerBatch.toFixed(0)} entries per batch`,
        rate: v.appendsPerSecond,
        unit: 'entries/s',
        p50Ms: v.commitP50Ms,
        p99Ms: v.commitP99Ms,
        peakRssBytes: r.peakRssMiB * 2 ** 20,
        baseline,
      }));
    },
  },
  {
    name: 'ledger-scale',
    describe: (quick) => `a log of ${scaleEntries(quick).toLocaleString('en-US')} entries: full verification and inclusion proofs`,
    async run({ quick, dataParent }) {
      const r = await benchLedgerScale({ entries: scaleEntries(quick), proofs: quick ? 1_000 : 10_000, dataParent });
      if (!r.verify.ok) throw new Error('the generated ledger did not verify');
      return [
        {
          name: 'ledger-verify',
          description: `full verification of ${r.entries.toLocaleString('en-US')} entries (entry format, hash chain, RFC 9162 root, stored hashes) by a fresh process`,
          rate: r.verify.entriesPerSecond,
          unit: 'entries/s',
          peakRssBytes: r.rss.peakMiB * 2 ** 20,
          baseline: { name: 'SHA-256 per entry', rate: r.sha256.perEntryPerSecond },
        },
        {
          name: 'ledger-proof',
          description: `inclusion proofs at size ${r.entries.toLocaleString('en-US')} from stored hashes, random indexes`,
          rate: r.proof.p50Ms > 0 ? 1000 / r.proof.p50Ms : 0,
          unit: 'proofs/s',
          p50Ms: r.proof.p50Ms,
          p99Ms: r.proof.p99Ms,
        },
      ];
    },
  },
];

export const ledgerBenchNames = ledgerBenches.map((b) => b.name);

/** Issue 4's targets on a 2-core machine (RSS growth and 10M entries: bench/ledger-scale.ts on its own). */
export const ledgerChecks: Check[] = [
  { kind: 'rate', label: 'durable ledger appends ≥ 20,000/s', scenario: 'ledger-append', min: 20_000 },
  { kind: 'rate', label: 'full verification ≥ 500,000 entries/s', scenario: 'ledger-verify', min: 500_000 },
  { kind: 'latency', label: 'inclusion proof p50 ≤ 1 ms', scenario: 'ledger-proof', maxP50Ms: 1 },
];
