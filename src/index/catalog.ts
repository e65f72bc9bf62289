import { LayeredIndex } from './layered-index.ts';
import type { ImageIndex, SignatureBatch, SpaceFilter, SpaceLoader } from './types.ts';

/** Where a reload reads from: a consistent snapshot of the stored spaces (src/store). */
export interface SnapshotSource {
  snapshot(only: SpaceFilter | undefined, load: SpaceLoader): { seq: number; knownSpaces: number[] };
}

/** The in-memory indexes of every database space, by space id. */
export class IndexCatalog {
  private readonly spaces = new Map<number, ImageIndex>();

  constructor(private readonly createIndex: () => ImageIndex) {}

  get(dbId: number): ImageIndex | undefined {
    return this.spaces.get(dbId);
  }

  ensure(dbId: number): ImageIndex {
    let index = this.spaces.get(dbId);
    if (!index) {
      index = this.createIndex();
      this.spaces.set(dbId, index);
    }
    return index;
  }

  drop(dbId: number): void {
    this.spaces.get(dbId)?.clear();
    this.spaces.delete(dbId);
  }

  /**
   * Puts an index in place of a space's (a LayeredIndex over a freshly mapped segment,
   * say); the one it replaces is cleared, which unmaps a segment under it.
   */
  install(dbId: number, index: ImageIndex): void {
    const old = this.spaces.get(dbId);
    this.spaces.set(dbId, index);
    if (old && old !== index) old.clear();
  }

  /** Replaces a space's whole content (a reload). */
  load(dbId: number, batches: Iterable<SignatureBatch>): void {
    const index = this.createIndex();
    try {
      for (const batch of batches) index.addBatch(batch);
    } catch (err) {
      index.clear(); // native memory goes back now, not when the collector finalizes the handle
      throw err;
    }
    index.trim();
    this.spaces.get(dbId)?.clear();
    this.spaces.set(dbId, index);
  }

  /**
   * Rebuilds the spaces of a snapshot (every space, or only those given) and keeps
   * exactly the spaces the snapshot knows. Returns the change-log position it matches.
   */
  reloadFrom(source: SnapshotSource, only?: SpaceFilter): number {
    const { seq, knownSpaces } = source.snapshot(only, (dbId, batches) => this.load(dbId, batches));
    this.retain(knownSpaces);
    return seq;
  }

  /** Keeps exactly these spaces: drops the others, creates missing ones empty. */
  retain(dbIds: readonly number[]): void {
    const keep = new Set(dbIds);
    for (const id of [...this.spaces.keys()]) if (!keep.has(id)) this.drop(id);
    for (const id of dbIds) this.ensure(id);
  }

  ids(): number[] {
    return [...this.spaces.keys()].sort((a, b) => a - b);
  }

  imageCount(): number {
    let n = 0;
    for (const index of this.spaces.values()) n += index.size;
    return n;
  }

  /** Images held outside segment files: whole in-memory indexes, and segments' deltas and removals. */
  imagesOutsideSegments(): number {
    let n = 0;
    for (const index of this.spaces.values()) n += index instanceof LayeredIndex ? index.delta.size + index.removedFromSegment : index.size;
    return n;
  }

  /** Private bytes of the indexes (segments' mappings not counted: see mappedBytes). */
  memoryBytes(): number {
    let n = 0;
    for (const index of this.spaces.values()) n += index.memoryBytes();
    return n;
  }

  /** Bytes of segment files mapped by the spaces' indexes (shared with other readers). */
  mappedBytes(): number {
    let n = 0;
    for (const index of this.spaces.values()) n += (index as { mappedBytes?: () => number }).mappedBytes?.() ?? 0;
    return n;
  }
}
