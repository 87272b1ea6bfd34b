/**
 * A one-line progress bar on stderr (`[#####-----] 52% 5,200/10,000 1,234/s ETA 4s`): redrawn in place on a
 * terminal, a plain line every 10% otherwise (logs, CI). Written here because it is 40 lines and cli-progress
 * is not a dependency.
 */
export interface ProgressBar {
  update(done: number, total: number): void;
  finish(): void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr, now: () => number = Date.now): ProgressBar {
  const start = now();
  const tty = stream.isTTY === true;
  let lastDecile = -1;
  let last = '';
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  return {
    update(done, total) {
      const fraction = total > 0 ? Math.min(1, done / total) : 1;
      const seconds = Math.max(0.001, (now() - start) / 1000);
      const rate = done / seconds;
      const eta = rate > 0 ? (total - done) / rate : 0;
      const width = 30;
      const filled = Math.round(fraction * width);
      last = `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(fraction * 100)}% ${fmt(done)}/${fmt(total)} ${fmt(rate)}/s ETA ${Math.ceil(eta)}s`;
      if (tty) stream.write(`\r${last}\x1b[K`);
      else if (Math.floor(fraction * 10) > lastDecile) {
        lastDecile = Math.floor(fraction * 10);
        stream.write(`${last}\n`);
      }
    },
    finish() {
      if (tty) stream.write('\n');
    },
  };
}
