import { COEFS_PER_CHANNEL, SIGNATURE_LENGTH } from '../signature/types.ts';

/**
 * What an iskdaemon file says that haarseek's rows do not: the order each signature
 * lists its coefficients in (iskdaemon's: ascending coefficient magnitude, which the
 * sorted stored signature cannot tell) and, rarely, a keyword order other than the
 * hash-set order an export recomputes. Kept so that exporting an imported space gives
 * back the same bytes; only images that need it get an entry, entries are packed many
 * to a chunk (one row per ~64 KB), and an entry is used only while the image's stored
 * signature still hashes to the value recorded with it.
 *
 * entry := f64 imageId | u32 signatureHash | u8 flags
 *          | (flags & 1) 120 x u8: rank of each file position within its sorted channel
 *          | (flags & 2) u16 count, count x i32 keywords in the file's order
 */
const HAS_RANKS = 1;
const HAS_KEYWORDS = 2;
const CHUNK_BYTES = 64 * 1024;

/** A 32-bit hash of a sorted signature (120 coefficients). */
export function signatureHash(coefs: ArrayLike<number>): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < coefs.length; k++) h = Math.imul(h ^ (coefs[k] & 0xffff), 0x01000193);
  return h >>> 0;
}

export interface OrderEntry {
  /** ranks[j]: where file position j of its channel sits in the sorted channel; null: sorted in the file. */
  ranks: Uint8Array | null;
  /** Keywords in the file's order; null: the hash-set order. */
  keywords: Int32Array | null;
}

/** Packs entries, in ascending image id, into chunks handed to `flush`. */
export class FileOrderRecorder {
  private buf = Buffer.allocUnsafe(CHUNK_BYTES + 1024);
  private pos = 0;
  private firstId = 0;

  constructor(private readonly flushChunk: (firstImageId: number, chunk: Buffer) => void) {}

  add(imageId: number, sortedCoefs: ArrayLike<number>, ranks: Uint8Array | null, keywords: ArrayLike<number> | null): void {
    const need = 13 + (ranks ? SIGNATURE_LENGTH : 0) + (keywords ? 2 + keywords.length * 4 : 0);
    if (this.pos + need > this.buf.length) {
      if (this.pos > 0) this.flush();
      if (need > this.buf.length) this.buf = Buffer.allocUnsafe(need);
    }
    if (this.pos === 0) this.firstId = imageId;
    const b = this.buf;
    b.writeDoubleLE(imageId, this.pos);
    b.writeUInt32LE(signatureHash(sortedCoefs), this.pos + 8);
    b[this.pos + 12] = (ranks ? HAS_RANKS : 0) | (keywords ? HAS_KEYWORDS : 0);
    this.pos += 13;
    if (ranks) {
      b.set(ranks, this.pos);
      this.pos += SIGNATURE_LENGTH;
    }
    if (keywords) {
      b.writeUInt16LE(keywords.length, this.pos);
      this.pos += 2;
      for (let k = 0; k < keywords.length; k++, this.pos += 4) b.writeInt32LE(keywords[k], this.pos);
    }
    if (this.pos >= CHUNK_BYTES) this.flush();
  }

  flush(): void {
    if (this.pos === 0) return;
    this.flushChunk(this.firstId, Buffer.from(this.buf.subarray(0, this.pos)));
    this.pos = 0;
  }
}

/** Walks the chunks of one space alongside its images (both in ascending id). */
export class FileOrderLookup {
  private chunk: Buffer | null = null;
  private pos = 0;
  private currentId = -1;

  constructor(private readonly chunks: Iterator<Buffer>) {
    this.nextEntry();
  }

  /**
   * The entry of imageId if one was recorded for the signature it has now (its hash
   * matches), else null. Ids must be asked for in ascending order.
   */
  find(imageId: number, sortedCoefs: ArrayLike<number>): OrderEntry | null {
    while (this.currentId !== -1 && this.currentId < imageId) {
      this.skipEntry();
      this.nextEntry();
    }
    if (this.currentId !== imageId) return null;
    const b = this.chunk!;
    const hash = b.readUInt32LE(this.pos + 8);
    const flags = b[this.pos + 12];
    let p = this.pos + 13;
    let ranks: Uint8Array | null = null;
    let keywords: Int32Array | null = null;
    if (flags & HAS_RANKS) {
      ranks = new Uint8Array(b.subarray(p, p + SIGNATURE_LENGTH));
      p += SIGNATURE_LENGTH;
    }
    if (flags & HAS_KEYWORDS) {
      const n = b.readUInt16LE(p);
      p += 2;
      keywords = new Int32Array(n);
      for (let k = 0; k < n; k++, p += 4) keywords[k] = b.readInt32LE(p);
    }
    return hash === signatureHash(sortedCoefs) ? { ranks, keywords } : null;
  }

  /** Ends the walk (closes the chunk cursor, which would otherwise hold its statement). */
  close(): void {
    this.chunks.return?.();
    this.currentId = -1;
  }

  private skipEntry(): void {
    const b = this.chunk!;
    const flags = b[this.pos + 12];
    let p = this.pos + 13;
    if (flags & HAS_RANKS) p += SIGNATURE_LENGTH;
    if (flags & HAS_KEYWORDS) p += 2 + b.readUInt16LE(p) * 4;
    this.pos = p;
  }

  private nextEntry(): void {
    while (this.chunk === null || this.pos >= this.chunk.length) {
      const next = this.chunks.next();
      if (next.done) {
        this.currentId = -1;
        return;
      }
      this.chunk = next.value;
      this.pos = 0;
    }
    this.currentId = this.chunk.readDoubleLE(this.pos);
  }
}

/** Puts sorted coefficients back in the file's order. */
export function applyRanks(sorted: ArrayLike<number>, ranks: Uint8Array, out: Int32Array): void {
  for (let k = 0; k < SIGNATURE_LENGTH; k++) {
    const base = k - (k % COEFS_PER_CHANNEL);
    out[k] = sorted[base + ranks[k]];
  }
}
