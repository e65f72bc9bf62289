/**
 * The bounded in-flight queue of one process. A request past the bound is answered
 * "busy" at once instead of waiting behind the others: nginx then tries another
 * reader, and a direct client can retry.
 */
export class Admission {
  private inFlight = 0;
  busyAnswers = 0;

  constructor(readonly limit: number) {}

  get current(): number {
    return this.inFlight;
  }

  /** A slot, or null when the process is full; release() is safe to call more than once. */
  enter(): (() => void) | null {
    if (this.inFlight >= this.limit) {
      this.busyAnswers++;
      return null;
    }
    this.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
    };
  }
}
