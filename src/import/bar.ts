/**
 * The import progress bar on stderr: done/total (bytes and files), resources stored, resources/s and ETA.
 * `renderBar` is pure; `ProgressBar` redraws one line in place on a terminal (at most 5 times a second) and
 * prints a plain line every few seconds otherwise (logs, CI). ETA is by bytes: they are known up front for every
 * file, resource counts are not until a file is parsed.
 */
export interface BarState {
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
  resources: number;
  failures: number;
  elapsedMs: number;
}

export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

export function formatBytes(n: number): string {
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

export function renderBar(s: BarState, width = 24): string {
  const fraction = s.bytesTotal > 0 ? Math.min(1, s.bytesDone / s.bytesTotal) : 1;
  const filled = Math.round(fraction * width);
  const seconds = s.elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(s.resources / seconds) : 0;
  const eta = s.bytesDone > 0 && fraction < 1 ? formatDuration((s.elapsedMs * (s.bytesTotal - s.bytesDone)) / s.bytesDone) : fraction >= 1 ? '0:00' : '?';
  const parts = [
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%`,
    `${formatBytes(s.bytesDone)}/${formatBytes(s.bytesTotal)}`,
    `files ${s.filesDone}/${s.filesTotal}`,
    `${s.resources.toLocaleString('en-US')} resources`,
    `${rate.toLocaleString('en-US')}/s`,
    `ETA ${eta}`,
  ];
  if (s.failures > 0) parts.push(`${s.failures} failed`);
  return parts.join('  ');
}

export class ProgressBar {
  private last = 0;
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean };
  private readonly interval: number;

  constructor(stream: NodeJS.WritableStream & { isTTY?: boolean }) {
    this.stream = stream;
    this.interval = stream.isTTY ? 200 : 5000;
  }

  update(state: BarState, force = false): void {
    const now = Date.now();
    if (!force && now - this.last < this.interval) return;
    this.last = now;
    const line = renderBar(state);
    this.stream.write(this.stream.isTTY ? `\r\x1b[2K${line}` : `${line}\n`);
  }

  finish(state: BarState): void {
    this.last = 0;
    this.update(state, true);
    if (this.stream.isTTY) this.stream.write('\n');
  }
}
