import { Worker } from 'node:worker_threads';
import { ProtocolError } from '../errors.ts';
import { type MethodCall, liftPayloads, parseMethodCall } from './wire.ts';

/** XML (payloads aside) up to this size is parsed inline: about 15 ms of sax at worst. */
const INLINE_XML_BYTES = 48 * 1024;
/** Payload text up to this size is decoded inline: about 2 ms of native base64. */
const INLINE_PAYLOAD_BYTES = 2 * 1024 * 1024;

interface Job {
  id: number;
  body: Buffer;
  transfer: boolean;
  resolve(call: MethodCall): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
}

/**
 * Parses XML-RPC bodies: small ones on the spot, large ones in worker threads, one at a
 * time per worker, first come first served. A worker that dies fails its one job and is
 * replaced.
 */
export class ParsePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(size: number, private readonly workerUrl = new URL('./parse-worker.js', import.meta.url)) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  /**
   * A large body moves to the worker (no copy) unless the caller still needs it
   * (keepBody: a reader that may relay it); the body is unusable afterwards otherwise.
   */
  parse(body: Buffer, keepBody = false): Promise<MethodCall> {
    if (this.slots.length === 0 || body.length <= INLINE_XML_BYTES) return parseMethodCall(body);
    if (body.length <= INLINE_XML_BYTES + INLINE_PAYLOAD_BYTES && liftPayloads(body).xml.length <= INLINE_XML_BYTES) return parseMethodCall(body);
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, body, transfer: !keepBody && ownsMemory(body), resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new ProtocolError('the server is stopping'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const worker = new Worker(this.workerUrl);
    worker.unref();
    const slot: Slot = { worker, job: null };
    worker.on('message', (msg: { id: number; call?: MethodCall; error?: string; protocol?: boolean }) => {
      const job = slot.job;
      if (!job || job.id !== msg.id) return;
      slot.job = null;
      if (msg.call) job.resolve({ method: msg.call.method, params: restoreBuffers(msg.call.params) as unknown[] });
      else job.reject(msg.protocol ? new ProtocolError(msg.error ?? 'not a valid XML-RPC call') : new Error(msg.error));
      this.pump();
    });
    worker.on('error', (err) => this.replace(slot, err));
    worker.on('exit', (code) => {
      if (!this.closed) this.replace(slot, new Error(`the XML-RPC parse worker exited with code ${code}`));
    });
    return slot;
  }

  private replace(slot: Slot, err: Error): void {
    const index = this.slots.indexOf(slot);
    if (index < 0 || this.closed) return;
    slot.job?.reject(err);
    slot.job = null;
    void slot.worker.terminate();
    this.slots[index] = this.spawn();
    this.pump();
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.job || this.queue.length === 0) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      slot.worker.postMessage({ id: job.id, body: job.body }, job.transfer ? [job.body.buffer as ArrayBuffer] : []);
    }
  }
}

function ownsMemory(body: Buffer): boolean {
  return body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer;
}

/** Structured cloning turns Buffers into plain Uint8Arrays; the methods expect Buffers. */
function restoreBuffers(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) return value.map(restoreBuffers);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, restoreBuffers(v)]));
  }
  return value;
}
