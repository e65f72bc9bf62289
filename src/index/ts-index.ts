import { CHANNELS, COEFS_PER_CHANNEL, PIXELS, SIGNATURE_LENGTH, type Signature } from '../signature/types.ts';
import { BIN_OF_INDEX, WEIGHTS } from '../signature/weights.ts';
import { TopK } from './top-k.ts';
import type { ImageIndex, QueryOptions, RankedResult, SignatureBatch } from './types.ts';

const LISTS = CHANNELS * 2 * PIXELS;
const EMPTY = new Uint32Array(0);
/** What an index with no images holds: these shared zero-length arrays, nothing of its own. */
const NO_LISTS: Uint32Array[] = [];
const NO_LENGTHS = new Int32Array(0);
const NO_DOUBLES = new Float64Array(0);
const NO_FLAGS = new Uint8Array(0);
const INITIAL_SLOTS = 1024;
/** A list reference in the array of posting lists (a full pointer; no pointer compression in Node). */
const REFERENCE_BYTES = 8;
/** Tombstoned slots tolerated before compaction: a quarter of the live ones, at least this. */
const MIN_DEAD_BEFORE_COMPACT = 1024;

function listOf(channel: number, coef: number): number {
  return coef > 0 ? (channel * 2) * PIXELS + coef : (channel * 2 + 1) * PIXELS - coef;
}

/**
 * The posting walk, the hot loop of every query. A small function of its own, unrolled
 * by eight, is what V8 compiles best here (about 1.5x the plain loop inlined in query).
 */
function subtractWeight(scores: Float64Array, postings: Uint32Array, len: number, w: number): void {
  let p = 0;
  for (; p + 8 <= len; p += 8) {
    scores[postings[p]] -= w;
    scores[postings[p + 1]] -= w;
    scores[postings[p + 2]] -= w;
    scores[postings[p + 3]] -= w;
    scores[postings[p + 4]] -= w;
    scores[postings[p + 5]] -= w;
    scores[postings[p + 6]] -= w;
    scores[postings[p + 7]] -= w;
  }
  for (; p < len; p++) scores[postings[p]] -= w;
}

/**
 * Inverted index in flat typed arrays. Each image gets a slot; a posting list per
 * (channel, sign, coefficient) holds slots. Removal tombstones the slot and compacts
 * once tombstones exceed a quarter of the live images, so later queries never walk
 * more than 25% dead postings. An index with no images holds no arrays (a database
 * space costs a few hundred bytes until its first image): the 98,304 list slots,
 * 1.2 MB, come with the first add and go with clear() or the removal of the last image.
 */
export class TsImageIndex implements ImageIndex {
  private postings = NO_LISTS;
  private lengths = NO_LENGTHS;
  private slotIds = NO_DOUBLES;
  private slotAvgl = NO_DOUBLES;
  private slotAlive = NO_FLAGS;
  private slots = 0;
  private bulk = false;
  private dead = 0;
  private readonly slotOf = new Map<number, number>();
  private scores = NO_DOUBLES;

  get size(): number {
    return this.slotOf.size;
  }

  add(id: number, sig: Signature): void {
    this.insert(id, sig.coefs, 0, sig.avgl, 0);
  }

  addBatch(batch: SignatureBatch): void {
    this.bulk = true;
    try {
      for (let k = 0; k < batch.count; k++) this.insert(batch.ids[k], batch.coefs, k * SIGNATURE_LENGTH, batch.avgl, k * CHANNELS);
    } finally {
      this.bulk = false;
    }
  }

  trim(): void {
    for (let list = 0; list < this.lengths.length; list++) {
      const len = this.lengths[list];
      const postings = this.postings[list];
      if (postings.length > len) this.postings[list] = len === 0 ? EMPTY : postings.slice(0, len);
    }
  }

  /** Removing the last image frees everything, as clear() does. */
  remove(id: number): boolean {
    if (!this.drop(id)) return false;
    if (this.slotOf.size === 0) this.clear();
    return true;
  }

  has(id: number): boolean {
    return this.slotOf.has(id);
  }

  ids(): number[] {
    return Array.from(this.slotOf.keys()).sort((a, b) => a - b);
  }

  avgl(id: number): Float64Array | undefined {
    const slot = this.slotOf.get(id);
    return slot === undefined ? undefined : this.slotAvgl.slice(slot * CHANNELS, slot * CHANNELS + CHANNELS);
  }

  clear(): void {
    this.postings = NO_LISTS;
    this.lengths = NO_LENGTHS;
    this.slotIds = NO_DOUBLES;
    this.slotAvgl = NO_DOUBLES;
    this.slotAlive = NO_FLAGS;
    this.slots = 0;
    this.dead = 0;
    this.slotOf.clear();
    this.scores = NO_DOUBLES;
  }

  query(sig: Signature, options: QueryOptions): RankedResult[] {
    const n = this.slots;
    const limit = Math.max(0, Math.floor(options.limit));
    if (limit === 0 || this.slotOf.size === 0) return [];
    const weights = WEIGHTS[options.sketch ? 1 : 0];
    if (this.scores.length < n) this.scores = new Float64Array(this.slotIds.length);
    const scores = this.scores;
    const avgl = this.slotAvgl;
    const q0 = sig.avgl[0], q1 = sig.avgl[1], q2 = sig.avgl[2];
    const w0 = weights[0], w1 = weights[1], w2 = weights[2];
    for (let s = 0, a = 0; s < n; s++, a += 3) {
      scores[s] = w0 * Math.abs(avgl[a] - q0) + w1 * Math.abs(avgl[a + 1] - q1) + w2 * Math.abs(avgl[a + 2] - q2);
    }
    if (!options.fast) {
      for (let c = 0; c < CHANNELS; c++) {
        for (let k = 0; k < COEFS_PER_CHANNEL; k++) {
          const coef = sig.coefs[c * COEFS_PER_CHANNEL + k];
          const list = listOf(c, coef);
          subtractWeight(scores, this.postings[list], this.lengths[list], weights[BIN_OF_INDEX[coef < 0 ? -coef : coef] * CHANNELS + c]);
        }
      }
    }
    const top = new TopK(limit);
    const alive = this.slotAlive;
    const ids = this.slotIds;
    const allowed = options.allowed;
    // Most slots lose to the worst kept score; that one comparison rejects them.
    let worst = Infinity;
    for (let s = 0; s < n; s++) {
      const score = scores[s];
      if (score > worst || alive[s] === 0 || !top.wouldAccept(score, ids[s])) continue;
      if (allowed !== undefined && !allowed.has(ids[s])) continue;
      top.push(score, ids[s]);
      worst = top.worstScore();
    }
    return top.sorted();
  }

  memoryBytes(): number {
    let bytes = this.postings.length * REFERENCE_BYTES + this.lengths.byteLength + this.slotIds.byteLength + this.slotAvgl.byteLength;
    bytes += this.slotAlive.byteLength + this.scores.byteLength;
    for (const p of this.postings) bytes += p.byteLength;
    return bytes + this.slotOf.size * 40;
  }

  /** add() of a signature found at offsets of flat arrays (a Signature's, or a batch's): no object per image. */
  private insert(id: number, coefs: Int32Array | Int16Array, coefAt: number, avgl: Float64Array, avglAt: number): void {
    if (this.slotOf.has(id)) this.drop(id);
    if (this.postings === NO_LISTS) {
      this.postings = new Array<Uint32Array>(LISTS).fill(EMPTY);
      this.lengths = new Int32Array(LISTS);
    }
    if (this.slots === this.slotIds.length) this.growSlots(Math.max(INITIAL_SLOTS, this.slots * 2));
    const slot = this.slots++;
    this.slotIds[slot] = id;
    this.slotAlive[slot] = 1;
    for (let c = 0; c < CHANNELS; c++) this.slotAvgl[slot * CHANNELS + c] = avgl[avglAt + c];
    this.slotOf.set(id, slot);
    for (let c = 0, o = coefAt; c < CHANNELS; c++) {
      for (let k = 0; k < COEFS_PER_CHANNEL; k++, o++) this.append(listOf(c, coefs[o]), slot);
    }
  }

  /** remove() without giving the arrays back when it empties the index (insert replacing an id). */
  private drop(id: number): boolean {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return false;
    this.slotOf.delete(id);
    this.slotAlive[slot] = 0;
    this.dead++;
    if (this.dead > Math.max(MIN_DEAD_BEFORE_COMPACT, this.slotOf.size >> 2)) this.compact();
    return true;
  }

  private append(list: number, slot: number): void {
    let postings = this.postings[list];
    const len = this.lengths[list];
    if (len === postings.length) {
      // Lists past 1024 postings grow by a sixteenth, as the native ones do: little slack
      // at a million images, and few enough copies. Bulk loads double; trim() follows.
      const grown = new Uint32Array(len < 16 ? 16 : this.bulk ? len * 2 : len < 1024 ? len + (len >> 1) : len + (len >> 4));
      grown.set(postings);
      this.postings[list] = postings = grown;
    }
    postings[len] = slot;
    this.lengths[list] = len + 1;
  }

  private growSlots(capacity: number): void {
    const ids = new Float64Array(capacity);
    ids.set(this.slotIds.subarray(0, this.slots));
    const avgl = new Float64Array(capacity * CHANNELS);
    avgl.set(this.slotAvgl.subarray(0, this.slots * CHANNELS));
    const alive = new Uint8Array(capacity);
    alive.set(this.slotAlive.subarray(0, this.slots));
    this.slotIds = ids;
    this.slotAvgl = avgl;
    this.slotAlive = alive;
  }

  /** Drops tombstoned slots: renumbers live slots densely and rewrites every list. */
  private compact(): void {
    const remap = new Int32Array(this.slots);
    let next = 0;
    for (let s = 0; s < this.slots; s++) {
      if (this.slotAlive[s] === 0) {
        remap[s] = -1;
        continue;
      }
      remap[s] = next;
      this.slotIds[next] = this.slotIds[s];
      this.slotAvgl.copyWithin(next * CHANNELS, s * CHANNELS, s * CHANNELS + CHANNELS);
      this.slotAlive[next] = 1;
      this.slotOf.set(this.slotIds[next], next);
      next++;
    }
    this.slotAlive.fill(0, next, this.slots);
    for (let list = 0; list < LISTS; list++) {
      const postings = this.postings[list];
      const len = this.lengths[list];
      let kept = 0;
      for (let p = 0; p < len; p++) {
        const moved = remap[postings[p]];
        if (moved >= 0) postings[kept++] = moved;
      }
      this.lengths[list] = kept;
      if (kept === 0) this.postings[list] = EMPTY;
      else if (postings.length > kept * 2 + 16) this.postings[list] = postings.slice(0, kept);
    }
    this.slots = next;
    this.dead = 0;
  }
}
