import type { Signature } from '../signature/types.ts';

export interface QueryOptions {
  /** How many results to return (the caller applies iskdaemon's numres+1 rule). */
  limit: number;
  /** Use the sketch weight table instead of the photo one. */
  sketch?: boolean;
  /** Score on the three DC values only (imgSeek's "fast" query). */
  fast?: boolean;
  /** Only these image ids may appear in the results (keyword-restricted queries). */
  allowed?: ReadonlySet<number>;
}

/**
 * Many signatures in flat arrays, as they are read from the database: image k has id
 * ids[k], DC values avgl[3k..3k+2] and coefficients coefs[120k..120k+119] (int16, as
 * stored). Loading through batches avoids one object and one native call per image.
 */
export interface SignatureBatch {
  count: number;
  ids: Float64Array;
  avgl: Float64Array;
  coefs: Int16Array;
}

/**
 * Receives each space of a stored snapshot with its images, batch by batch. The batches
 * are only valid while they are iterated (their arrays are reused).
 */
/** Which spaces a snapshot covers (a Set will do). */
export interface SpaceFilter {
  has(dbId: number): boolean;
}

export type SpaceLoader = (dbId: number, batches: Iterable<SignatureBatch>) => void;

/** [image id, raw imgSeek score]; lower raw is more similar. */
export type RankedResult = [id: number, raw: number];

/**
 * The in-memory inverted index of one database space. Both engines implement it;
 * results are best first, ties broken by ascending id.
 */
export interface ImageIndex {
  readonly size: number;
  /** Adds an image, replacing any earlier signature stored under the same id. */
  add(id: number, sig: Signature): void;
  /** add() for each image of the batch, in order; the batch is copied, not kept. */
  addBatch(batch: SignatureBatch): void;
  /**
   * addBatch grows posting lists fast (bulk loading); trim gives the slack back. Call it
   * once the batches are in.
   */
  trim(): void;
  remove(id: number): boolean;
  has(id: number): boolean;
  /** The stored ids in ascending order. */
  ids(): number[];
  avgl(id: number): Float64Array | undefined;
  clear(): void;
  query(sig: Signature, options: QueryOptions): RankedResult[];
  /** Bytes held by the index arrays (for /health and benchmarks). */
  memoryBytes(): number;
}

/**
 * A space's index read from a segment file (segment-format.ts): the native engine maps
 * it read-only (the page cache is shared by every reader on the host), the TypeScript
 * engine reads it into memory. It cannot take new images (LayeredIndex puts a delta
 * index in front for those); remove() hides an image in this process only.
 */
export interface SegmentIndex extends ImageIndex {
  readonly path: string;
  /** The change-log sequence the file covers: changes after it belong in a delta. */
  readonly seq: number;
  /** The database space the file was written for. */
  readonly dbId: number;
  /** Images in the file, removed ones included. */
  readonly fileCount: number;
  readonly fileBytes: number;
  /** Images of the file hidden by remove() in this process. */
  readonly removedCount: number;
  /** Bytes of the file mapped (shared between processes); 0 when it was read into memory. */
  mappedBytes(): number;
  /** Throws: a segment is read-only. */
  add(id: number, sig: Signature): void;
  /** Throws: a segment is read-only. */
  addBatch(batch: SignatureBatch): void;
  /** Releases the file (unmaps it); the index is empty afterwards. Same as clear(). */
  close(): void;
}

export interface SegmentOpenOptions {
  /** Check the body checksum on open (default true); the header and structure are always checked. */
  verify?: boolean;
}
