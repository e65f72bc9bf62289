import type { NativeAddon } from '../signature/native-loader.ts';
import type { Signature } from '../signature/types.ts';
import { SegmentFormatError } from './segment-format.ts';
import { queryHandle } from './native-index.ts';
import type { QueryOptions, RankedResult, SegmentIndex, SegmentOpenOptions, SignatureBatch } from './types.ts';

/** The segment reader of the C++ addon (native/src/segment.cc). */
export interface NativeSegmentHandle {
  size(): number;
  info(): { count: number; removed: number; seq: number; dbId: number; fileBytes: number; mappedBytes: number };
  remove(id: number): boolean;
  has(id: number): boolean;
  ids(): Float64Array;
  avgl(id: number): Float64Array | undefined;
  /** Results interleaved: [id, raw, id, raw, ...], best first. */
  query(coefs: Int32Array, avgl: Float64Array, limit: number, sketch: boolean, fast: boolean, allowed?: Float64Array): Float64Array;
  memoryBytes(): number;
  close(): void;
}

export interface SegmentAddon extends NativeAddon {
  NativeSegment?: new (path: string, verify: boolean) => NativeSegmentHandle;
  segmentAbiVersion?: number;
  /** The SIMD flavour of the segment walk: scalar, avx2 or avx512. */
  segmentKernel?: () => string;
  /** Forces a flavour (tests, benchmarks); false when this CPU cannot run it. */
  setSegmentKernel?: (kernel: string) => boolean;
  /** How whole-segment top-k queries run: auto, exact or bounded (all give the same results). */
  segmentStrategy?: () => string;
  setSegmentStrategy?: (strategy: 'auto' | 'exact' | 'bounded') => void;
  /** Tests: images the bounded query scores first, candidates it holds at once; (0, 0) restores. */
  setSegmentBoundLimits?: (first: number, max: number) => void;
  /** How whole-segment top-k queries went in this process. */
  segmentQueryCounts?: () => SegmentQueryCounts;
}

export interface SegmentQueryCounts {
  bounded: number;
  exact: number;
  /** Bounded queries that gave way to the exact walk, by reason. */
  fewGroups: number;
  noMatches: number;
  tooManyCandidates: number;
  notFull: number;
  weakBound: number;
  /** Over the bounded queries that completed: candidates found, and scored exactly. */
  candidates: number;
  scored: number;
}

const SEGMENT_ABI_VERSION = 1;

/** The addon's segment reader, or an Error saying why it has none (an addon built before it). */
export function segmentConstructor(addon: NativeAddon): new (path: string, verify: boolean) => NativeSegmentHandle {
  const a = addon as SegmentAddon;
  if (typeof a.NativeSegment !== 'function' || a.segmentAbiVersion !== SEGMENT_ABI_VERSION) {
    throw new Error('haarseek: the native addon has no index segment reader (stale build); rebuild it with `npx node-gyp rebuild -C native`');
  }
  return a.NativeSegment;
}

/**
 * A segment file mapped read-only by the addon: queries walk the mapping, so every
 * reader on the host shares one copy in the page cache. Same results, bit for bit, as
 * TsSegmentIndex and as an in-memory index of the same images.
 */
export class NativeSegmentIndex implements SegmentIndex {
  private readonly info: ReturnType<NativeSegmentHandle['info']>;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly handle: NativeSegmentHandle,
  ) {
    this.info = handle.info();
  }

  /** Maps and checks a segment file; throws SegmentFormatError when it is not a usable one. */
  static open(addon: NativeAddon, path: string, options: SegmentOpenOptions = {}): NativeSegmentIndex {
    const Segment = segmentConstructor(addon);
    try {
      return new NativeSegmentIndex(path, new Segment(path, options.verify ?? true));
    } catch (err) {
      if ((err as { code?: string }).code === 'HAARSEEK_SEGMENT_INVALID') {
        const reason = (err as Error).message.replace(/^haarseek index segment .*?: /, '').replace(/; rebuild it from the database$/, '');
        throw new SegmentFormatError(path, reason);
      }
      throw err;
    }
  }

  get seq(): number {
    return this.info.seq;
  }

  get dbId(): number {
    return this.info.dbId;
  }

  get fileCount(): number {
    return this.closed ? 0 : this.info.count;
  }

  get fileBytes(): number {
    return this.closed ? 0 : this.info.fileBytes;
  }

  get removedCount(): number {
    return this.fileCount - this.size;
  }

  get size(): number {
    return this.handle.size();
  }

  add(): void {
    throw new Error('an index segment is read-only: add images through a LayeredIndex');
  }

  addBatch(_batch: SignatureBatch): void {
    this.add();
  }

  trim(): void {}

  remove(id: number): boolean {
    return this.handle.remove(id);
  }

  has(id: number): boolean {
    return this.handle.has(id);
  }

  ids(): number[] {
    return Array.from(this.handle.ids());
  }

  avgl(id: number): Float64Array | undefined {
    return this.handle.avgl(id);
  }

  clear(): void {
    this.close();
  }

  close(): void {
    this.closed = true;
    this.handle.close();
  }

  mappedBytes(): number {
    return this.closed ? 0 : this.info.mappedBytes;
  }

  memoryBytes(): number {
    return this.handle.memoryBytes();
  }

  query(sig: Signature, options: QueryOptions): RankedResult[] {
    return queryHandle(this.handle, sig, options);
  }
}
