import type { Signature } from '../signature/types.ts';
import type { ImageIndex, QueryOptions, RankedResult, SegmentIndex, SignatureBatch } from './types.ts';

/**
 * A space's index as a reader holds it: a segment file (shared, read-only) plus a small
 * private delta index for the images added or replaced after the segment's sequence,
 * and the segment's own removal mask for the images removed or replaced since. An id is
 * live in at most one of the two, so a query is the merge of the two top-k lists,
 * ordered as every index orders (score, then ascending id): the same ids, order and
 * float64 scores as one in-memory index holding the same images.
 */
export class LayeredIndex implements ImageIndex {
  private seg: SegmentIndex | null;

  constructor(
    segment: SegmentIndex,
    readonly delta: ImageIndex,
  ) {
    this.seg = segment;
  }

  /** The segment underneath, or null after clear(). */
  get segment(): SegmentIndex | null {
    return this.seg;
  }

  /** The change-log sequence of the segment (changes after it are replayed into this index); 0 without one. */
  get seq(): number {
    return this.seg?.seq ?? 0;
  }

  get size(): number {
    return (this.seg?.size ?? 0) + this.delta.size;
  }

  /** Images of the segment hidden by removals and replacements since it was written. */
  get removedFromSegment(): number {
    return this.seg?.removedCount ?? 0;
  }

  add(id: number, sig: Signature): void {
    this.delta.add(id, sig); // throws on a bad signature before anything changes
    this.seg?.remove(id);
  }

  addBatch(batch: SignatureBatch): void {
    this.delta.addBatch(batch);
    if (this.seg) for (let k = 0; k < batch.count; k++) this.seg.remove(batch.ids[k]);
  }

  trim(): void {
    this.delta.trim();
  }

  remove(id: number): boolean {
    const inDelta = this.delta.remove(id);
    const inSegment = this.seg?.remove(id) ?? false;
    return inDelta || inSegment;
  }

  has(id: number): boolean {
    return this.delta.has(id) || (this.seg?.has(id) ?? false);
  }

  ids(): number[] {
    const a = this.seg?.ids() ?? [];
    const b = this.delta.ids();
    if (b.length === 0) return a;
    if (a.length === 0) return b;
    const out = new Array<number>(a.length + b.length);
    let i = 0;
    let j = 0;
    let o = 0;
    while (i < a.length && j < b.length) out[o++] = a[i] < b[j] ? a[i++] : b[j++];
    while (i < a.length) out[o++] = a[i++];
    while (j < b.length) out[o++] = b[j++];
    return out;
  }

  avgl(id: number): Float64Array | undefined {
    return this.delta.avgl(id) ?? this.seg?.avgl(id);
  }

  /** Empties the index: the segment is released (unmapped), the delta cleared. */
  clear(): void {
    this.seg?.close();
    this.seg = null;
    this.delta.clear();
  }

  query(sig: Signature, options: QueryOptions): RankedResult[] {
    const limit = Math.max(0, Math.floor(options.limit));
    if (!(limit > 0)) return [];
    const a = this.seg && this.seg.size > 0 ? this.seg.query(sig, options) : [];
    const b = this.delta.size > 0 ? this.delta.query(sig, options) : [];
    if (b.length === 0) return a;
    if (a.length === 0) return b;
    const out: RankedResult[] = [];
    let i = 0;
    let j = 0;
    while (out.length < limit && (i < a.length || j < b.length)) {
      if (j >= b.length) out.push(a[i++]);
      else if (i >= a.length) out.push(b[j++]);
      else {
        const x = a[i];
        const y = b[j];
        out.push(x[1] < y[1] || (x[1] === y[1] && x[0] < y[0]) ? a[i++] : b[j++]);
      }
    }
    return out;
  }

  /** Private bytes: the delta, the segment's removal mask and scratch (the mapping is not counted). */
  memoryBytes(): number {
    return (this.seg?.memoryBytes() ?? 0) + this.delta.memoryBytes();
  }

  /** Bytes of the segment file mapped (shared with other readers). */
  mappedBytes(): number {
    return this.seg?.mappedBytes() ?? 0;
  }
}
