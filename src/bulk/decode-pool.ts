import { Worker } from 'node:worker_threads';
import type { DecodeLimits } from '../image/limits.ts';
import type { Signature } from '../signature/types.ts';

export interface DecodeJob {
  seq: number;
  path: string;
}

export type DecodeAnswer =
  | { ok: true; width: number; height: number; coefs: Int32Array; avgl: Float64Array; thumb: Uint8Array }
  | { ok: false; reason: 'unreadable' | 'too-large' | 'undecodable'; message: string };

export type Decoded = { ok: true; width: number; height: number; sig: Signature; thumb: Uint8Array } | Extract<DecodeAnswer, { ok: false }>;

interface Pending {
  job: DecodeJob;
  resolve(answer: Decoded): void;
}

interface Slot {
  worker: Worker;
  pending: Pending | null;
}

/**
 * Image files to signatures in `size` worker threads (decode-worker.ts), one file per
 * worker at a time, first come first served. A worker that dies fails its file as
 * undecodable and is replaced.
 */
export class DecodePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private seq = 0;
  private closed = false;

  constructor(
    size: number,
    private readonly engine: 'ts' | 'native',
    private readonly limits: DecodeLimits,
    private readonly workerUrl = new URL('./decode-worker.js', import.meta.url),
  ) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  /** Files waiting for a worker or being decoded. */
  get busy(): number {
    return this.queue.length + this.slots.filter((s) => s.pending).length;
  }

  decode(path: string): Promise<Decoded> {
    return new Promise((resolve) => {
      this.queue.push({ job: { seq: ++this.seq, path }, resolve });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const worker = new Worker(this.workerUrl, { workerData: { engine: this.engine, limits: this.limits } });
    const slot: Slot = { worker, pending: null };
    worker.on('message', (msg: DecodeAnswer & { seq: number }) => {
      const pending = slot.pending;
      if (!pending || pending.job.seq !== msg.seq) return;
      slot.pending = null;
      if (msg.ok) pending.resolve({ ok: true, width: msg.width, height: msg.height, sig: { coefs: msg.coefs, avgl: msg.avgl }, thumb: msg.thumb });
      else pending.resolve({ ok: false, reason: msg.reason, message: msg.message });
      this.pump();
    });
    worker.on('error', (err) => this.replace(slot, `the decode worker failed on this file: ${err.message}`));
    worker.on('exit', (code) => {
      if (!this.closed) this.replace(slot, `the decode worker exited with code ${code} on this file`);
    });
    return slot;
  }

  private replace(slot: Slot, message: string): void {
    const index = this.slots.indexOf(slot);
    if (index < 0 || this.closed) return;
    slot.pending?.resolve({ ok: false, reason: 'undecodable', message });
    slot.pending = null;
    void slot.worker.terminate();
    this.slots[index] = this.spawn();
    this.pump();
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.pending || this.queue.length === 0) continue;
      const pending = this.queue.shift()!;
      slot.pending = pending;
      slot.worker.postMessage(pending.job);
    }
  }
}
