import cliProgress from 'cli-progress';

/** A progress bar (cli-progress) with count, rate, ETA and free fields; periodic plain lines when not a terminal. */
export class ProgressLine {
  private readonly bar: cliProgress.SingleBar;
  private readonly start = performance.now();

  constructor(label: string, total: number, unit = 'img') {
    this.bar = new cliProgress.SingleBar({
      format: `${label} [{bar}] {value}/{total}  {rate} ${unit}/s  ETA {eta_formatted}  {fields}`,
      barsize: 24,
      barCompleteChar: '#',
      barIncompleteChar: '.',
      hideCursor: false,
      noTTYOutput: true,
      notTTYSchedule: 10_000,
      stream: process.stderr,
      etaBuffer: 50,
    });
    this.bar.start(total, 0, { rate: '0.0', fields: '' });
  }

  /** `unitsDone` counts the units of the rate (images) when progress counts something else (steps). */
  update(done: number, fields: Record<string, string> = {}, unitsDone = done): void {
    const elapsed = (performance.now() - this.start) / 1000;
    const text = Object.entries(fields)
      .map(([k, v]) => `${k} ${v}`)
      .join('  ');
    this.bar.update(done, { rate: (unitsDone / Math.max(elapsed, 1e-9)).toFixed(1), fields: text });
  }

  done(): void {
    this.bar.stop();
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const pad = (n: number) => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}
