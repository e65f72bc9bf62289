import type { Signature } from '../signature/types.ts';
import type { ImageIndex } from './types.ts';

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

  /** Replaces a space's whole content (a reload). */
  load(dbId: number, images: Iterable<[number, Signature]>): void {
    const index = this.createIndex();
    for (const [id, sig] of images) index.add(id, sig);
    this.spaces.get(dbId)?.clear();
    this.spaces.set(dbId, index);
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

  memoryBytes(): number {
    let n = 0;
    for (const index of this.spaces.values()) n += index.memoryBytes();
    return n;
  }
}
