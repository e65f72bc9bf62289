import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * The worst event-loop delay of the last 10 to 20 seconds: how long any request may have
 * waited for this process's single thread. Two histograms take turns so that the figure
 * covers a recent window without ever being empty.
 */
export class LoopDelayWindow {
  private current: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private previous: IntervalHistogram | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(windowMs = 10_000) {
    this.current.enable();
    this.timer = setInterval(() => this.rotate(), windowMs);
    this.timer.unref();
  }

  /** Milliseconds; the sampling resolution (10 ms) is included in the figure. */
  maxMs(): number {
    const ns = Math.max(this.current.max, this.previous?.max ?? 0);
    return Math.round(ns / 1e5) / 10;
  }

  close(): void {
    clearInterval(this.timer);
    this.current.disable();
    this.previous?.disable();
  }

  private rotate(): void {
    this.previous?.disable();
    this.previous = this.current;
    this.current = monitorEventLoopDelay({ resolution: 10 });
    this.current.enable();
  }
}
