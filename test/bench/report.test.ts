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
      { ...base, name: 'read', description: 'audited read', server: 'sealed', ok: 12_345, requestsPerSecond: 1234.5, p50Ms: 12.345, p99Ms: 40, peakRssBytes: 256 * 2 ** 20, serverCpuPercent: 150, serverCpuMsPerRequest: 0.5 },
      { ...base, name: 'bare', description: 'same bytes', server: 'bare', ok: 80_000, requestsPerSecond: 8000, p50Ms: 1.5, p99Ms: 9.999, peakRssBytes: 100 * 2 ** 20, serverCpuPercent: 90, serverCpuMsPerRequest: 0.0456 },
    ],
    checks: [
      { label: 'read / bare ≥ 0.60', kind: 'ratio', value: 0.1543, min: 0.6, pass: false },
      { label: 'creates ≥ 1,500/s', kind: 'rate', value: 1600.4, min: 1500, pass: true },
      { label: 'search ≥ 1/s', kind: 'rate', value: undefined, min: 1, pass: false },
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
  t.match(text, /^read\s+sealed\s+1235\s+12\.35\s+40\.00\s+0\s+256\s+150\s+0\.500\s+20$/m);
  t.match(text, /^bare\s+bare\s+8000\s+1\.50\s+10\.00\s+0\s+100\s+90\s+0\.046\s+20$/m);
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
  t.match(markdown, /^\| scenario \| server \| requests\/s \| p50 ms \| p99 ms \| errors \| peak RSS MiB \| server CPU % \| server CPU ms\/req \| bench CPU % \|$/m);
  t.match(markdown, /^\| --- \| --- \| ---: \| ---: \| ---: \| ---: \| ---: \| ---: \| ---: \| ---: \|$/m, 'numeric columns right-aligned');
  t.match(markdown, /^\| read \| sealed \| 1235 \| 12\.35 \| 40\.00 \| 0 \| 256 \| 150 \| 0\.500 \| 20 \|$/m);
  t.match(markdown, /^\| read \/ bare ≥ 0\.60 \| 0\.15 \| BELOW \|$/m);
  t.notMatch(markdown, /Failed/);
  t.match(formatMarkdown(report(['bare: 1 connection errors'])), /\*\*Failed:\*\*\n\n- bare: 1 connection errors/);
});
