// node topprof.mjs <cpuprofile> [rows] [--busy]  — self time per function; --busy keeps only 500 ms windows that are <30% idle
import fs from 'node:fs';
const p = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const busyOnly = process.argv.includes('--busy');
const lastArg = process.argv.indexOf('--last'); const lastUs = lastArg > 0 ? Number(process.argv[lastArg + 1]) * 1e6 : Infinity;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const key = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber}`;
let t = p.startTime; const samples = [];
for (let i = 0; i < p.samples.length; i++) { t += p.timeDeltas[i]; samples.push([t, byId.get(p.samples[i]), p.timeDeltas[i]]); }
const W = 500_000; const win = new Map();
for (const [ts, n, d] of samples) { const w = Math.floor(ts / W); const e = win.get(w) ?? { idle: 0, all: 0 }; e.all += d; if (n.callFrame.functionName === '(idle)') e.idle += d; win.set(w, e); }
const self = new Map(); let total = 0; let busyMs = 0;
const endT = samples.at(-1)[0];
for (const [ts, n, d] of samples) { if (endT - ts > lastUs) continue; const e = win.get(Math.floor(ts / W)); if (busyOnly && e.idle / e.all > 0.3) continue; const k = key(n); self.set(k, (self.get(k) ?? 0) + d); total += d; }
const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[3] ?? 30));
for (const [k, v] of rows) console.log((v / 1000).toFixed(1).padStart(9), 'ms', (100 * v / total).toFixed(1).padStart(5), '%', k);
console.log('total', (total / 1000).toFixed(0), 'ms');
