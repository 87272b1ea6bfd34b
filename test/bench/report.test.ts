/**
 * The bench's summary as text and as markdown: every scenario and check appears once, numbers are formatted
 * the same way in both, and failures are spelled out.
 */
import t from 'tap';
import { formatMarkdown, formatText, type Report } from '../../bench/report.ts';

function report(failures: string[] = []): Report {
  const base = { connections: 32, durationSeconds: 10, non2xx: 0, errors: 0, timeouts: 0, badStatuses: {}, benchCpuPercent: 20 };
  return {
    date: '2026-01-01T00:00:00.000Z',
    code: 'abc1234',
    machine: { cpu: 'Test CPU', cores: 2, memoryGiB: 4, node: 'v24.0.0', kernel: 'Linux test x64', dataDisk: '/dev/x ext4, mounted on /' },
    loadBefore: '0.10 0.20 0.30',
    loadAfter: '1.00 0.50 0.40',
    connections: 32,
    durationSeconds: 10,
    warmupSeconds: 3,
    mixSize: 1000,
    sync: { p50Ms: 0.5, p99Ms: 4 },
    lifetimePeakRss: { 'sealed-fhir': 300 * 2 ** 20, bare: undefined },
    results: [
      { ...base, name: 'read', description: 'audited read', server: 'sealed', ok: 12_345, requestsPerSecond: 1234.5, resourcesPerSecond: 1234.5, p50Ms: 12.345, p99Ms: 40, peakRssBytes: 256 * 2 ** 20, serverCpuPercent: 150, serverCpuMsPerRequest: 0.5 },
      { ...base, name: 'bare', description: 'same bytes', server: 'bare', ok: 80_000, requestsPerSecond: 8000, resourcesPerSecond: 8000, p50Ms: 1.5, p99Ms: 9.999, peakRssBytes: 100 * 2 ** 20, serverCpuPercent: 90, serverCpuMsPerRequest: 0.0456 },
    ],
    inProcess: [
      { name: 'ledger-verify', description: 'full verification', rate: 612_345.4, unit: 'entries/s', peakRssBytes: 80 * 2 ** 20, baseline: { name: 'raw SHA-256', rate: 1_224_690.8 } },
      { name: 'ledger-proof', description: 'inclusion proofs', rate: 9000, unit: 'proofs/s', p50Ms: 0.1, p99Ms: 0.25 },
    ],
    checks: [
      { label: 'read / bare ≥ 0.60', kind: 'ratio', value: 0.1543, pass: false },
      { label: 'creates ≥ 1,500/s', kind: 'rate', value: 1600.4, pass: true },
      { label: 'search ≥ 1/s', kind: 'rate', value: undefined, pass: false },
      { label: 'search / bare', kind: 'ratio', value: 0.5, pass: undefined },
      { label: 'search p50 ≤ 5 ms', kind: 'latency', value: 4.2, pass: true },
    ],
    failures,
  };
}

t.test('text summary', async (t) => {
  const text = formatText(report());
  t.match(text, /^started: 2026-01-01T00:00:00\.000Z, code abc1234$/m);
  t.match(text, /cpu: Test CPU × 2 cores, memory 4 GiB/);
  t.match(text, /load average \(1\/5\/15 min\): 0\.10 0\.20 0\.30 before, 1\.00 0\.50 0\.40 after/);
  t.match(text, /sealed-fhir 300 MiB, bare \? MiB/);
  t.match(text, /fdatasync p50 0\.50 ms, p99 4\.00 ms/);
  t.match(text, /^read\s+sealed\s+32\s+1235\s+1235\s+12\.35\s+40\.00\s+0\s+256\s+150\s+0\.500\s+20$/m);
  t.match(text, /^bare\s+bare\s+32\s+8000\s+8000\s+1\.50\s+10\.00\s+0\s+100\s+90\s+0\.046\s+20$/m);
  t.match(text, /^ledger-verify\s+612345\s+entries\/s\s+–\s+–\s+80\s+raw SHA-256\s+1224691\s+0\.500$/m, 'in-process rows with their same-run baseline');
  t.match(text, /^ledger-proof\s+9000\s+proofs\/s\s+0\.100\s+0\.250\s+–\s+–\s+–\s+–$/m);
  t.match(text, /^search \/ bare\s+0\.50\s+info$/m, 'a ratio without target is information');
  t.match(text, /^search p50 ≤ 5 ms\s+4\.20 ms\s+PASS$/m);
  t.match(text, /^read \/ bare ≥ 0\.60\s+0\.15\s+BELOW$/m);
  t.match(text, /^creates ≥ 1,500\/s\s+1600\/s\s+PASS$/m);
  t.match(text, /^search ≥ 1\/s\s+not run\s+NOT RUN$/m);
  t.notMatch(text, /FAILED/);
  t.match(formatText(report(['read: 2 non-2xx responses (500×2)'])), /FAILED:\n {2}- read: 2 non-2xx responses \(500×2\)/);
});

t.test('markdown summary', async (t) => {
  const markdown = formatMarkdown(report());
  t.match(markdown, /^- cpu: Test CPU × 2 cores/m);
  t.match(markdown, /^- `read` \(sealed\): audited read$/m);
  t.match(markdown, /^\| scenario \| server \| conns \| requests\/s \| resources\/s \| p50 ms \| p99 ms \| errors \| peak RSS MiB \| server CPU % \| server CPU ms\/req \| bench CPU % \|$/m);
  t.match(markdown, /^\| --- \| --- \| ---: \| ---: \| ---: \| ---: \| ---: \| ---: \| ---: \| ---: \| ---: \| ---: \|$/m, 'numeric columns right-aligned');
  t.match(markdown, /^\| read \| sealed \| 32 \| 1235 \| 1235 \| 12\.35 \| 40\.00 \| 0 \| 256 \| 150 \| 0\.500 \| 20 \|$/m);
  t.match(markdown, /^- `ledger-verify` \(in-process\): full verification$/m);
  t.match(markdown, /^\| ledger-verify \| 612345 \| entries\/s \| – \| – \| 80 \| raw SHA-256 \| 1224691 \| 0\.500 \|$/m);
  t.match(markdown, /^\| read \/ bare ≥ 0\.60 \| 0\.15 \| BELOW \|$/m);
  t.notMatch(markdown, /Failed/);
  t.match(formatMarkdown(report(['bare: 1 connection errors'])), /\*\*Failed:\*\*\n\n- bare: 1 connection errors/);
});
