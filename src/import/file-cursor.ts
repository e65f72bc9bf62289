import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ImportError } from './errors.ts';

const CHUNK = 4 * 1024 * 1024;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Reads a file front to back through one reused buffer, so a file of any size is read
 * in bounded memory. Every read names what it expected, so running off the end of the
 * file becomes a message saying exactly where the file stopped and what was missing.
 * Offsets handed to `view` are into `buf`; absolute file offsets come from `offset()`.
 */
export class FileCursor {
  readonly size: number;
  private readonly fd: number;
  private buf: Uint8Array;
  view: DataView;
  /**
   * The buffer as int32s, on little-endian hosts only (null elsewhere): every field of
   * the formats read here sits at a file offset that is a multiple of 4, and the buffer
   * always starts at one, so words[offset >> 2] is the int32 at buffer offset `offset`.
   */
  words: Int32Array | null;
  /** File offset of buf[0]. */
  private base = 0;
  /** Next unread byte in buf. */
  pos = 0;
  /** Bytes of buf holding file data. */
  private end = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    this.size = fstatSync(this.fd).size;
    this.buf = new Uint8Array(CHUNK);
    this.view = new DataView(this.buf.buffer);
    this.words = LITTLE_ENDIAN ? new Int32Array(this.buf.buffer) : null;
  }

  close(): void {
    closeSync(this.fd);
  }

  offset(): number {
    return this.base + this.pos;
  }

  remaining(): number {
    return this.size - this.offset();
  }

  /** Bytes available in the buffer from pos without refilling. */
  buffered(): number {
    return this.end - this.pos;
  }

  /**
   * Makes n bytes available at pos (refilling, growing the buffer for a large n), or
   * throws the truncation error naming `what`.
   */
  need(n: number, what: string): void {
    if (this.end - this.pos >= n) return;
    if (this.remaining() < n) {
      throw new ImportError(
        'truncated',
        `${this.path} is truncated: ${what} (${n} bytes) was expected at byte ${this.offset()}, but the file ends at byte ${this.size}`,
      );
    }
    this.refill(n);
    if (this.end - this.pos < n) throw new ImportError('truncated', `${this.path} shrank while it was being read (at byte ${this.offset()})`);
  }

  /** Like need(n) but only as much as the file and the buffer allow; returns bytes buffered. */
  fill(atLeast: number): number {
    if (this.end - this.pos < atLeast && this.remaining() > this.end - this.pos) this.refill(Math.min(atLeast, this.remaining()));
    return this.end - this.pos;
  }

  skip(n: number): void {
    this.pos += n;
  }

  i32(): number {
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** An int64 as a number, or NaN when it is outside +-(2^53 - 1). */
  i64(): number {
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getInt32(this.pos + 4, true);
    this.pos += 8;
    return hi >= -0x200000 && hi < 0x200000 ? hi * 0x100000000 + lo : Number.NaN;
  }

  /** An uint64 as a number, or NaN when it is 2^53 or more. */
  u64(): number {
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    return hi < 0x200000 ? hi * 0x100000000 + lo : Number.NaN;
  }

  private refill(n: number): void {
    const keep = this.end - this.pos;
    if (n > this.buf.byteLength) {
      const bigger = new Uint8Array(Math.max(n, this.buf.byteLength * 2) + 3 & ~3);
      bigger.set(this.buf.subarray(this.pos, this.end));
      this.buf = bigger;
      this.view = new DataView(bigger.buffer);
      this.words = LITTLE_ENDIAN ? new Int32Array(bigger.buffer) : null;
    } else {
      this.buf.copyWithin(0, this.pos, this.end);
    }
    this.base += this.pos;
    this.pos = 0;
    this.end = keep;
    while (this.end < this.buf.byteLength && this.base + this.end < this.size) {
      const got = readSync(this.fd, this.buf, this.end, this.buf.byteLength - this.end, this.base + this.end);
      if (got === 0) break;
      this.end += got;
    }
  }
}
