/**
 * Renders a run as a plain-text table (the default) or as markdown (`--markdown`, pasted into
 * docs/benchmarks.md). Pure: a Report in, a string out.
 */
import type { Machine } from './machine.ts';
import type { CheckResult, InProcessResult, ScenarioResult } from './scenario.ts';

export interface Report {
  /** When the run started (ISO 8601). */
  date: string;
  /** Commit of the code measured (see codeRevision). */
  code: string;
  machine: Machine;
  loadBefore: string;
  loadAfter: string;
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  mixSize: number;
  /** fdatasync of 4 KiB in the data dir's file system, measured before the servers started. */
  sync: { p50Ms: number; p99Ms: number };
  /** Lifetime peak RSS (VmHWM) of each server process, in bytes, read just before it was stopped. */
  lifetimePeakRss: Record<string, number | undefined>;
  results: ScenarioResult[];
  /** Measured inside the bench process after the servers stopped (the ledger's append, verify, proofs). */
  inProcess: InProcessResult[];
  checks: CheckResult[];
  failures: string[];
}

const HEADER = ['scenario', 'server', 'conns', 'requests/s', 'resources/s', 'p50 ms', 'p99 ms', 'errors', 'peak RSS MiB', 'server CPU %', 'server CPU ms/req', 'bench CPU %'];
const IN_PROCESS_HEADER = ['measure', 'rate', 'unit', 'p50 ms', 'p99 ms', 'peak RSS MiB', 'baseline (same run)', 'baseline rate', 'rate / baseline'];

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

function resultRow(r: ScenarioResult): string[] {
  return [
    r.name,
    r.server,
    String(r.connections),
    r.requestsPerSecond.toFixed(0),
    r.resourcesPerSecond.toFixed(0),
    r.p50Ms.toFixed(2),
    r.p99Ms.toFixed(2),
    String(r.non2xx + r.errors),
    mib(r.peakRssBytes),
    r.serverCpuPercent.toFixed(0),
    r.serverCpuMsPerRequest.toFixed(3),
    r.benchCpuPercent.toFixed(0),
  ];
}

const optional = (value: number | undefined, digits: number) => (value === undefined ? '–' : value.toFixed(digits));

function inProcessRow(r: InProcessResult): string[] {
  return [
    r.name,
    r.rate.toFixed(0),
    r.unit,
    optional(r.p50Ms, 3),
    optional(r.p99Ms, 3),
    optional(r.peakRssBytes === undefined ? undefined : r.peakRssBytes / 2 ** 20, 0),
    r.baseline?.name ?? '–',
    optional(r.baseline?.rate, 0),
    r.baseline && r.baseline.rate > 0 ? (r.rate / r.baseline.rate).toFixed(3) : '–',
  ];
}

function checkValue(c: CheckResult): string {
  if (c.value === undefined) return 'not run';
  if (c.kind === 'ratio') return c.value.toFixed(2);
  if (c.kind === 'latency') return `${c.value.toFixed(2)} ms`;
  return `${c.value.toFixed(0)}/s`;
}

function checkRow(c: CheckResult): string[] {
  const mark = c.value === undefined ? 'NOT RUN' : c.pass === undefined ? 'info' : c.pass ? 'PASS' : 'BELOW';
  return [c.label, checkValue(c), mark];
}

function machineLines(report: Report): string[] {
  const m = report.machine;
  return [
    `started: ${report.date}, code ${report.code}`,
    `cpu: ${m.cpu} × ${m.cores} cores, memory ${m.memoryGiB} GiB`,
    `node: ${m.node}, ${m.kernel}`,
    `data dir disk: ${m.dataDisk}; 4 KiB append + fdatasync p50 ${report.sync.p50Ms.toFixed(2)} ms, p99 ${report.sync.p99Ms.toFixed(2)} ms`,
    `load average (1/5/15 min): ${report.loadBefore} before, ${report.loadAfter} after`,
    `server lifetime peak RSS (VmHWM): ${Object.entries(report.lifetimePeakRss).map(([name, bytes]) => `${name} ${bytes === undefined ? '?' : mib(bytes)} MiB`).join(', ')}`,
    `load: ${report.connections} connections, ${report.warmupSeconds} s warm-up + ${report.durationSeconds} s measured per scenario; read-mix over ${report.mixSize} patients`,
  ];
}

function textTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  // Numbers right-aligned, names left-aligned, like any table one compares figures in.
  const cell = (value: string, i: number) => (/^[\d.,/]+(\/s)?$/.test(value) ? value.padStart(widths[i]!) : value.padEnd(widths[i]!));
  return rows.map((row) => row.map(cell).join('  ').trimEnd()).join('\n');
}

function markdownTable(rows: string[][]): string {
  const [head, ...body] = rows;
  const line = (row: string[]) => `| ${row.join(' | ')} |`;
  const align = head!.map((_, i) => (body.every((row) => /^[\d.,/]+(\/s)?$/.test(row[i]!)) ? '---:' : '---'));
  return [line(head!), line(align), ...body.map(line)].join('\n');
}

export function formatText(report: Report): string {
  const parts = [
    machineLines(report).join('\n'),
    textTable([HEADER, ...report.results.map(resultRow)]),
    ...(report.inProcess.length > 0 ? [textTable([IN_PROCESS_HEADER, ...report.inProcess.map(inProcessRow)])] : []),
    textTable([['check', 'measured', 'mark'], ...report.checks.map(checkRow)]),
  ];
  if (report.failures.length > 0) parts.push(`FAILED:\n${report.failures.map((f) => `  - ${f}`).join('\n')}`);
  return `${parts.join('\n\n')}\n`;
}

export function formatMarkdown(report: Report): string {
  const parts = [
    machineLines(report).map((line) => `- ${line}`).join('\n'),
    [...report.results.map((r) => `- \`${r.name}\` (${r.server}): ${r.description}`), ...report.inProcess.map((r) => `- \`${r.name}\` (in-process): ${r.description}`)].join('\n'),
    markdownTable([HEADER, ...report.results.map(resultRow)]),
    ...(report.inProcess.length > 0 ? [markdownTable([IN_PROCESS_HEADER, ...report.inProcess.map(inProcessRow)])] : []),
    markdownTable([['check (same run)', 'measured', 'mark'], ...report.checks.map(checkRow)]),
  ];
  if (report.failures.length > 0) parts.push(`**Failed:**\n\n${report.failures.map((f) => `- ${f}`).join('\n')}`);
  return `${parts.join('\n\n')}\n`;
}
