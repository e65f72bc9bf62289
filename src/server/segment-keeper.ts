import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { WriterStore } from '../store/writer-store.ts';
import type { SegmentSetResult } from './segment-set.ts';
import type { SegmentJob } from './segment-worker.ts';

export interface SegmentKeeperOptions {
  dbPath: string;
  dir: string;
  store: Pick<WriterStore, 'lastSeq' | 'holdChanges' | 'onCommit'>;
  /** The position of the segment set in use, null for none. */
  segmentSeq: () => number | null;
  /** Images the indexes hold outside segments (read from SQLite, or in a delta). */
  imagesOutside: () => number;
  /** Changes (log rows, or images held outside segments) past which a new set is written. */
  deltaMax: number;
  /** Called on the event loop once a new set is in place (the writer loads it, then trims). */
  onWritten: (result: SegmentSetResult) => void;
  log: Logger;
}

/** How long after a failed write the next is tried. */
const RETRY_AFTER_MS = 30_000;
/** Commits are counted, not checked one by one: the check runs at most this often. */
const CHECK_DELAY_MS = 200;

/**
 * Decides when a new segment set is written (by the writer, or by a replica for its
 * host's readers) and writes it in a worker thread, one at a time: when readers would replay more than deltaMax log rows after the current
 * set, or the indexes hold more than deltaMax images outside segments (a bulk load, a
 * space loaded from a file). A small database never needs one: it is loaded from
 * SQLite as before.
 */
export class SegmentKeeper {
  private worker: Worker | null = null;
  private timer: NodeJS.Timeout | null = null;
  private retryAt = 0;
  private stopped = false;
  private readonly releaseHold: () => void;
  private holdFrom = Number.POSITIVE_INFINITY;
  written = 0;
  failed = 0;
  lastWriteMs: number | null = null;

  constructor(private readonly o: SegmentKeeperOptions) {
    // The rows from the scan's start on stay until the set is in place: the manifest's fingerprint is one of them.
    this.releaseHold = o.store.holdChanges(() => this.holdFrom);
    removeLeftovers(o.dir);
    o.store.onCommit(() => this.schedule());
    this.schedule();
  }

  get writing(): boolean {
    return this.worker !== null;
  }

  /** How far the indexes are from the current set: log rows after it, and images held outside it. */
  backlog(): { changes: number; images: number } {
    const seq = this.o.segmentSeq();
    return { changes: seq === null ? 0 : this.o.store.lastSeq() - seq, images: this.o.imagesOutside() };
  }

  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.releaseHold();
    return this.worker ? this.worker.terminate().then(() => undefined) : Promise.resolve();
  }

  private schedule(): void {
    if (this.timer || this.worker || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.check();
    }, Math.max(CHECK_DELAY_MS, this.retryAt - Date.now()));
    this.timer.unref();
  }

  private check(): void {
    if (this.worker || this.stopped) return;
    const { changes, images } = this.backlog();
    if (Math.max(changes, images) < this.o.deltaMax) return;
    this.run({ changes, images });
  }

  private run(backlog: { changes: number; images: number }): void {
    const started = performance.now();
    this.holdFrom = this.o.store.lastSeq();
    this.o.log.info({ ...backlog }, 'writing index segments');
    const job: SegmentJob = { dbPath: this.o.dbPath, dir: this.o.dir };
    const worker = new Worker(new URL('./segment-worker.js', import.meta.url), { workerData: job });
    this.worker = worker;
    let result: SegmentSetResult | null = null;
    let failure = 'the worker exited without a result';
    worker.on('message', (msg: SegmentSetResult) => {
      result = msg;
    });
    worker.on('error', (err) => {
      failure = err.message;
    });
    worker.on('exit', () => {
      this.worker = null;
      this.holdFrom = Number.POSITIVE_INFINITY;
      if (this.stopped) return;
      if (!result) {
        this.failed++;
        this.retryAt = Date.now() + RETRY_AFTER_MS;
        this.o.log.error({ err: failure, retryInMs: RETRY_AFTER_MS }, 'writing index segments failed; the database is unaffected, retrying later');
      } else {
        this.written++;
        this.lastWriteMs = Math.round(performance.now() - started);
        this.o.log.info({ ...(result as SegmentSetResult), durationMs: this.lastWriteMs }, 'index segments written');
        try {
          this.o.onWritten(result);
        } catch (err) {
          this.o.log.error({ err: (err as Error).message }, 'could not switch to the new index segments');
        }
      }
      this.schedule();
    });
  }
}

/** Temporary files of a set whose writer was stopped halfway. */
function removeLeftovers(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) if (/\.tmp-/.test(name)) rmSync(join(dir, name), { force: true });
}
