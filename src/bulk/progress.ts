import cliProgress from 'cli-progress';

/** What the progress display shows: files settled of the total, and the counts so far. */
export interface ProgressCounts {
  files: number;
  added: number;
  skipped: number;
  failed: number;
}

/** Files per second over about the last RATE_WINDOW_MS (the whole run until then). */
const RATE_WINDOW_MS = 10_000;
/** Plain lines when stderr is not a terminal: one per this many ms. */
const PLAIN_EVERY_MS = 5_000;

/**
 * Progress of a bulk add on stderr: a cli-progress bar with rate and ETA on a terminal,
 * a plain line every few seconds otherwise (logs, CI). The total is counted while the
 * run goes (a second, light walk): until it is known, the bar shows `N+ files` and no ETA.
 */
export class Progress {
  private total = 0;
  private totalKnown = false;
  private readonly started = performance.now();
  private readonly samples: Array<[ms: number, files: number]> = [[this.started, 0]];
  private last: ProgressCounts = { files: 0, added: 0, skipped: 0, failed: 0 };
  private readonly bar: cliProgress.SingleBar | null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, enabled = true) {
    const tty = enabled && stream.isTTY === true;
    this.bar = tty
      ? new cliProgress.SingleBar(
          {
            stream,
            format: 'adding {bar} {value}/{totalLabel} files | {speed} files/s | ETA {etaText} | added {added} skipped {skipped} failed {failed}',
            hideCursor: true,
            barsize: 24,
            fps: 5,
          },
          cliProgress.Presets.shades_classic,
        )
      : null;
    if (this.bar) this.bar.start(1, 0, this.payload());
    else if (enabled) {
      this.timer = setInterval(() => this.printLine(), PLAIN_EVERY_MS);
      this.timer.unref();
    }
  }

  /** The total as counted so far; `final` once the count is complete. */
  setTotal(total: number, final: boolean): void {
    this.total = total;
    this.totalKnown = final;
    this.render();
  }

  update(counts: ProgressCounts): void {
    this.last = { ...counts };
    const now = performance.now();
    const lastSample = this.samples[this.samples.length - 1];
    if (!lastSample || now - lastSample[0] >= 250) {
      this.samples.push([now, counts.files]);
      while (this.samples.length > 2 && now - this.samples[1][0] > RATE_WINDOW_MS) this.samples.shift();
    }
    this.render();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.bar) {
      this.render();
      this.bar.stop();
    }
  }

  private rate(): number {
    const [since, files] = this.samples[0];
    const seconds = (performance.now() - since) / 1000;
    return seconds > 0.2 ? (this.last.files - files) / seconds : 0;
  }

  private eta(): string {
    const rate = this.rate();
    if (!this.totalKnown || rate <= 0) return '…';
    return formatSeconds(Math.max(0, this.total - this.last.files) / rate);
  }

  private payload() {
    const rate = this.rate();
    return {
      totalLabel: this.totalKnown ? String(this.total) : `${Math.max(this.total, this.last.files)}+`,
      speed: rate >= 100 ? rate.toFixed(0) : rate.toFixed(1),
      etaText: this.eta(),
      ...this.last,
    };
  }

  private render(): void {
    if (!this.bar || this.stopped) return;
    const total = Math.max(this.total, this.last.files, 1);
    if (this.bar.getTotal() !== total) this.bar.setTotal(total);
    this.bar.update(this.last.files, this.payload());
  }

  private printLine(): void {
    const p = this.payload();
    const share = this.totalKnown && this.total > 0 ? ` (${Math.floor((100 * this.last.files) / this.total)}%)` : '';
    this.stream.write(
      `haarseek add: ${this.last.files} of ${p.totalLabel} files${share}, ${p.speed} files/s, ETA ${p.etaText}; added ${this.last.added}, skipped ${this.last.skipped}, failed ${this.last.failed}\n`,
    );
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '…';
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
