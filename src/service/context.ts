import type { Engine } from '../engine.ts';
import { BusyError, ReadOnlyError, UnknownImageError, UnknownSpaceError } from '../errors.ts';
import type { DecodeLimits } from '../image/decode.ts';
import type { IndexCatalog } from '../index/catalog.ts';
import type { ImageIndex } from '../index/types.ts';
import type { StoreQueries, StoredImage } from '../store/queries.ts';
import type { WriterStore } from '../store/writer-store.ts';
import { SpaceStats } from './space-stats.ts';

export interface ServiceOptions {
  engine: Engine;
  catalog: IndexCatalog;
  /** The store to read keywords, sizes and signatures from (the writer's or a reader's). */
  queries: () => StoreQueries;
  /** Present on the writer only. */
  writer?: WriterStore;
  decodeLimits: DecodeLimits;
  maxConcurrentDecodes: number;
  allowedDirs: string[];
  /** Where saveAllDbs writes and loadAllDbs reads the save point. */
  savepointPath: string;
  /** Files no save, load or export may name: the live database, its journal, locks, keys. */
  protectedPaths: string[];
  maxResults: number;
  /** Most database spaces this server holds; creating one more is refused. */
  maxSpaces: number;
  /** Told how long each stage of a query or add took (metrics). */
  observe?: (stage: Stage, seconds: number) => void;
  /** The ranking of image queries when a call names none. */
  ranking: Ranking;
}

/**
 * How image queries are ranked. imgseek: exactly imgSeek's scores and order. verified:
 * query variants (mirrored, zoomed out, rotated back, a rectified card) and a check of
 * the best candidates against their stored thumbnails (src/query-stage).
 */
export type Ranking = 'verified' | 'imgseek';
export const RANKINGS: readonly Ranking[] = ['verified', 'imgseek'];

/** The stages of a query or add that are timed. */
export type Stage = 'decode' | 'signature' | 'index' | 'verify';

/** What the service's parts share: the options, the counters and the lookups that throw. */
export class ServiceContext {
  readonly stats = new SpaceStats();
  /** Set while a long admin operation (an import) owns the database: writes are refused as busy. */
  busyWith: string | null = null;

  constructor(readonly o: ServiceOptions) {}

  /** Runs a stage and reports its duration. */
  timed<T>(stage: Stage, work: () => T): T {
    if (!this.o.observe) return work();
    const started = performance.now();
    try {
      return work();
    } finally {
      this.o.observe(stage, (performance.now() - started) / 1000);
    }
  }

  index(dbId: number): ImageIndex {
    const index = this.o.catalog.get(dbId);
    if (!index) throw new UnknownSpaceError(dbId);
    return index;
  }

  requireImage(dbId: number, imageId: number): void {
    if (!this.index(dbId).has(imageId)) throw new UnknownImageError(dbId, imageId);
  }

  storedImage(dbId: number, imageId: number): StoredImage {
    this.requireImage(dbId, imageId);
    const image = this.o.queries().image(dbId, imageId);
    if (!image) throw new UnknownImageError(dbId, imageId);
    return image;
  }

  store(): WriterStore {
    if (!this.o.writer) throw new ReadOnlyError('this instance is read-only');
    if (this.busyWith) throw new BusyError(`${this.busyWith} is running; retry when it is done`);
    return this.o.writer;
  }
}
