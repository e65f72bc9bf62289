import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { CHANNELS, COEFS_PER_CHANNEL, PIXELS, SIGNATURE_LENGTH, type Signature } from '../signature/types.ts';
import { BIN_OF_INDEX, WEIGHTS } from '../signature/weights.ts';
import {
  BITMAP_UNITS,
  CHUNK_BITS,
  CHUNK_SLOTS,
  SEGMENT_HEADER_BYTES,
  SEGMENT_LISTS,
  type SegmentHeader,
  type SegmentViews,
  checkSegmentBody,
  decodeHeader,
} from './segment-format.ts';
import { TopK } from './top-k.ts';
import type { QueryOptions, RankedResult, SegmentIndex, SegmentOpenOptions, SignatureBatch } from './types.ts';

/** Chunks with fewer allowed images than this score them one by one instead of walking the chunk. */
const DIRECT_SCORING_MAX = 256;
const NO_MASK = new Uint8Array(0);

function listOf(channel: number, coef: number): number {
  return coef > 0 ? channel * 2 * PIXELS + coef : (channel * 2 + 1) * PIXELS - coef;
}

/** Subtracts w at each local slot of a uint16 posting array (the hot loop; unrolled as in ts-index.ts). */
function subtractPostings(scores: Float64Array, units: Uint16Array, from: number, to: number, w: number): void {
  let p = from;
  for (; p + 8 <= to; p += 8) {
    scores[units[p]] -= w;
    scores[units[p + 1]] -= w;
    scores[units[p + 2]] -= w;
    scores[units[p + 3]] -= w;
    scores[units[p + 4]] -= w;
    scores[units[p + 5]] -= w;
    scores[units[p + 6]] -= w;
    scores[units[p + 7]] -= w;
  }
  for (; p < to; p++) scores[units[p]] -= w;
}

/** The set bits of a 65,536-bit bitmap starting at words[at], as ascending local slots. */
function decodeBitmap(words: Uint32Array, at: number): Uint16Array {
  let count = 0;
  for (let k = 0; k < CHUNK_SLOTS / 32; k++) {
    let v = words[at + k];
    v -= (v >>> 1) & 0x55555555;
    v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
    count += (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) | 0;
  }
  const out = new Uint16Array(count);
  let o = 0;
  for (let k = 0; k < CHUNK_SLOTS / 32; k++) {
    let bits = words[at + k] | 0;
    const base = k << 5;
    while (bits !== 0) {
      out[o++] = base + 31 - Math.clz32(bits & -bits);
      bits &= bits - 1;
    }
  }
  return out;
}

function checkQueryCoefs(coefs: Int32Array): void {
  for (let k = 0; k < SIGNATURE_LENGTH; k++) {
    const c = coefs[k];
    if (!(c !== 0 && c < PIXELS && c > -PIXELS)) throw new RangeError('signature coefficient out of range (must be +-1..16383)');
  }
}

/** Index of the first element of a[from, to) not below x (a ascending). */
function lowerBound(a: ArrayLike<number>, from: number, to: number, x: number): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A segment file read into memory, queried with the chunked walk: per chunk of 65,536
 * images a score array of that size, the avgl term, then the query's lists in query
 * order (uint16 arrays; dense lists' bitmaps decoded to arrays on first use), then the
 * top-k scan. Each score is
 * the same float64 operations in the same order as TsImageIndex, so results are
 * bit-identical to it and to the native reader.
 */
export class TsSegmentIndex implements SegmentIndex {
  private header: SegmentHeader | null;
  private v: SegmentViews | null;
  private buffer: Uint8Array | null;
  private masked = NO_MASK;
  private removed = 0;
  private scores: Float64Array | null = null;
  private readonly decoded = new Map<number, Uint16Array>();
  private decodedBytes = 0;

  private constructor(
    readonly path: string,
    buffer: Uint8Array,
    header: SegmentHeader,
    views: SegmentViews,
  ) {
    this.buffer = buffer;
    this.header = header;
    this.v = views;
  }

  /** Reads and checks a segment file; throws SegmentFormatError when it is not a usable one. */
  static open(path: string, options: SegmentOpenOptions = {}): TsSegmentIndex {
    const fd = openSync(path, 'r');
    let buffer: Uint8Array;
    try {
      const size = fstatSync(fd).size;
      buffer = new Uint8Array(size);
      let done = 0;
      while (done < size) {
        const got = readSync(fd, buffer, done, size - done, done);
        if (got === 0) break;
        done += got;
      }
      buffer = buffer.subarray(0, done);
    } finally {
      closeSync(fd);
    }
    const header = decodeHeader(buffer.subarray(0, SEGMENT_HEADER_BYTES), buffer.length, path);
    const views = checkSegmentBody(buffer, header, path, options.verify ?? true);
    return new TsSegmentIndex(path, buffer, header, views);
  }

  get seq(): number {
    return this.header?.seq ?? 0;
  }

  get dbId(): number {
    return this.header?.dbId ?? 0;
  }

  get fileCount(): number {
    return this.header?.count ?? 0;
  }

  get fileBytes(): number {
    return this.header?.fileBytes ?? 0;
  }

  get removedCount(): number {
    return this.removed;
  }

  get size(): number {
    return this.fileCount - this.removed;
  }

  add(): void {
    throw new Error('an index segment is read-only: add images through a LayeredIndex');
  }

  addBatch(_batch: SignatureBatch): void {
    this.add();
  }

  trim(): void {}

  remove(id: number): boolean {
    const slot = this.slotOf(id);
    if (slot < 0) return false;
    if (this.masked === NO_MASK) this.masked = new Uint8Array((this.fileCount + 7) >>> 3);
    this.masked[slot >>> 3] |= 1 << (slot & 7);
    this.removed++;
    return true;
  }

  has(id: number): boolean {
    return this.slotOf(id) >= 0;
  }

  ids(): number[] {
    if (!this.v) return [];
    const out: number[] = [];
    const ids = this.v.ids;
    for (let s = 0; s < ids.length; s++) if (!this.isMasked(s)) out.push(ids[s]);
    return out;
  }

  avgl(id: number): Float64Array | undefined {
    const slot = this.slotOf(id);
    if (slot < 0) return undefined;
    const v = this.v!;
    return Float64Array.of(v.avglY[slot], v.avglI[slot], v.avglQ[slot]);
  }

  clear(): void {
    this.close();
  }

  close(): void {
    this.buffer = null;
    this.v = null;
    this.header = null;
    this.masked = NO_MASK;
    this.removed = 0;
    this.scores = null;
    this.decoded.clear();
    this.decodedBytes = 0;
  }

  mappedBytes(): number {
    return 0;
  }

  memoryBytes(): number {
    return (this.buffer?.byteLength ?? 0) + this.masked.byteLength + (this.scores?.byteLength ?? 0) + (this.v?.chunkUnits.byteLength ?? 0) + this.decodedBytes;
  }

  query(sig: Signature, options: QueryOptions): RankedResult[] {
    const limit = Math.max(0, Math.floor(options.limit));
    if (!(limit > 0) || this.size === 0) return [];
    const v = this.v!;
    const fast = Boolean(options.fast);
    if (!fast) checkQueryCoefs(sig.coefs);
    const weights = WEIGHTS[options.sketch ? 1 : 0];
    const lists = new Int32Array(SIGNATURE_LENGTH);
    const w = new Float64Array(SIGNATURE_LENGTH);
    for (let c = 0; c < CHANNELS; c++) {
      for (let k = 0; k < COEFS_PER_CHANNEL; k++) {
        const coef = sig.coefs[c * COEFS_PER_CHANNEL + k];
        lists[c * COEFS_PER_CHANNEL + k] = listOf(c, coef);
        w[c * COEFS_PER_CHANNEL + k] = weights[BIN_OF_INDEX[coef < 0 ? -coef : coef] * CHANNELS + c];
      }
    }
    const q = { lists, w, fast, w0: weights[0], w1: weights[1], w2: weights[2], q0: sig.avgl[0], q1: sig.avgl[1], q2: sig.avgl[2] };
    this.scores ??= new Float64Array(CHUNK_SLOTS);
    const scores = this.scores;
    const ids = v.ids;
    if (options.allowed !== undefined) {
      const chosen = this.allowedSlots(options.allowed);
      if (chosen.length === 0) return [];
      const top = new TopK(Math.min(limit, chosen.length));
      for (let from = 0; from < chosen.length; ) {
        const chunk = chosen[from] >>> CHUNK_BITS;
        let to = from;
        while (to < chosen.length && chosen[to] >>> CHUNK_BITS === chunk) to++;
        if (to - from < DIRECT_SCORING_MAX) {
          for (let i = from; i < to; i++) {
            const score = this.scoreOne(chosen[i], q);
            if (top.wouldAccept(score, ids[chosen[i]])) top.push(score, ids[chosen[i]]);
          }
        } else {
          this.scoreChunk(chunk, q, scores);
          for (let i = from; i < to; i++) {
            const score = scores[chosen[i] & (CHUNK_SLOTS - 1)];
            if (top.wouldAccept(score, ids[chosen[i]])) top.push(score, ids[chosen[i]]);
          }
        }
        from = to;
      }
      return top.sorted();
    }
    const top = new TopK(Math.min(limit, this.size));
    const masked = this.masked;
    const anyMasked = this.removed > 0;
    let worst = Infinity;
    for (let chunk = 0; chunk < this.header!.chunks; chunk++) {
      const len = this.scoreChunk(chunk, q, scores);
      const first = chunk << CHUNK_BITS;
      for (let i = 0; i < len; i++) {
        const score = scores[i];
        if (score > worst) continue;
        const slot = first + i;
        if (anyMasked && (masked[slot >>> 3] >>> (slot & 7)) & 1) continue;
        if (!top.wouldAccept(score, ids[slot])) continue;
        top.push(score, ids[slot]);
        worst = top.worstScore();
      }
    }
    return top.sorted();
  }

  /** Fills scores[0, len) for the chunk's images; returns len. */
  private scoreChunk(chunk: number, q: QueryPlan, scores: Float64Array): number {
    const v = this.v!;
    const first = chunk << CHUNK_BITS;
    const len = Math.min(CHUNK_SLOTS, this.fileCount - first);
    const { avglY, avglI, avglQ } = v;
    const { w0, w1, w2, q0, q1, q2 } = q;
    for (let i = 0, s = first; i < len; i++, s++) {
      scores[i] = w0 * Math.abs(avglY[s] - q0) + w1 * Math.abs(avglI[s] - q1) + w2 * Math.abs(avglQ[s] - q2);
    }
    if (q.fast) return len;
    const dir = v.dir;
    const d = chunk * (SEGMENT_LISTS + 1);
    const base = v.chunkUnits[chunk];
    for (let j = 0; j < SIGNATURE_LENGTH; j++) {
      const l = q.lists[j];
      const s = dir[d + l];
      const e = dir[d + l + 1];
      if (e - s >= BITMAP_UNITS) {
        const slots = this.bitmapSlots(chunk, l, (base + e - BITMAP_UNITS) >>> 1);
        subtractPostings(scores, slots, 0, slots.length, q.w[j]);
      } else if (e > s) {
        subtractPostings(scores, v.units, base + s, base + e, q.w[j]);
      }
    }
    return len;
  }

  /** One image's score, the same operations in the same order as the chunk walk. */
  private scoreOne(slot: number, q: QueryPlan): number {
    const v = this.v!;
    let score = q.w0 * Math.abs(v.avglY[slot] - q.q0) + q.w1 * Math.abs(v.avglI[slot] - q.q1) + q.w2 * Math.abs(v.avglQ[slot] - q.q2);
    if (q.fast) return score;
    const chunk = slot >>> CHUNK_BITS;
    const local = slot & (CHUNK_SLOTS - 1);
    const d = chunk * (SEGMENT_LISTS + 1);
    const base = v.chunkUnits[chunk];
    for (let j = 0; j < SIGNATURE_LENGTH; j++) {
      const l = q.lists[j];
      const s = base + v.dir[d + l];
      const e = base + v.dir[d + l + 1];
      if (e - s >= BITMAP_UNITS) {
        if ((v.words[((e - BITMAP_UNITS) >>> 1) + (local >>> 5)] >>> (local & 31)) & 1) score -= q.w[j];
      } else if (e > s) {
        const at = lowerBound(v.units, s, e, local);
        if (at < e && v.units[at] === local) score -= q.w[j];
      }
    }
    return score;
  }

  /** The live slots of the allowed ids, ascending, without repeats. */
  private allowedSlots(allowed: ReadonlySet<number>): Uint32Array {
    const out: number[] = [];
    for (const id of allowed) {
      const slot = this.slotOf(id);
      if (slot >= 0) out.push(slot);
    }
    return Uint32Array.from(out).sort();
  }

  /**
   * A dense list of a chunk as a slot array, decoded from its bitmap on first use and
   * kept: JavaScript walks an array of slots much faster than it visits set bits (this
   * costs up to ~150 MB per million images once every dense list has been queried).
   */
  private bitmapSlots(chunk: number, list: number, wordAt: number): Uint16Array {
    const key = chunk * SEGMENT_LISTS + list;
    let slots = this.decoded.get(key);
    if (slots === undefined) {
      slots = decodeBitmap(this.v!.words, wordAt);
      this.decoded.set(key, slots);
      this.decodedBytes += slots.byteLength;
    }
    return slots;
  }

  private isMasked(slot: number): boolean {
    return this.removed > 0 && ((this.masked[slot >>> 3] >>> (slot & 7)) & 1) === 1;
  }

  /** The slot of a live (not removed) image, or -1. */
  private slotOf(id: number): number {
    if (!this.v || typeof id !== 'number') return -1;
    const ids = this.v.ids;
    const at = lowerBound(ids, 0, ids.length, id);
    if (at >= ids.length || ids[at] !== id || this.isMasked(at)) return -1;
    return at;
  }
}

interface QueryPlan {
  lists: Int32Array;
  w: Float64Array;
  fast: boolean;
  w0: number;
  w1: number;
  w2: number;
  q0: number;
  q1: number;
  q2: number;
}
