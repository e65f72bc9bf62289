import type Database from 'better-sqlite3';
import type { Signature } from '../signature/types.ts';
import { openReadOnly } from '../store/open.ts';
import { WriterStore } from '../store/writer-store.ts';
import type { AddTarget, Settle } from './add.ts';
import type { DecodePool } from './decode-pool.ts';

/** Ids per presence query (SQLite allows 32,766 parameters). */
const PRESENCE_CHUNK = 500;

interface Staged {
  path: string;
  imageId: number;
  width: number;
  height: number;
  sig: Signature;
  thumb: Uint8Array;
  replacing: boolean;
}

/**
 * Straight into a data directory (its writer lock held by the caller): decodes in the
 * pool's workers and commits batches through WriterStore.putImages, one transaction
 * each, logging every image in the change log as the writer does, so running readers
 * catch up. An image counts as added once its batch is committed.
 */
export class DataDirTarget implements AddTarget {
  readonly label: string;
  readonly concurrency: number;
  private readonly store: WriterStore;
  private readonly reader: Database.Database;
  private readonly presenceFull: Database.Statement;
  private staged: Staged[] = [];
  private firstStagedAt = 0;

  constructor(
    dbPath: string,
    private readonly space: number,
    private readonly pool: DecodePool,
    jobs: number,
    private readonly settle: Settle,
    private readonly lost: AbortSignal,
    private readonly batch = { images: 500, ms: 1000 },
    private readonly thumbnailsOnly = false,
  ) {
    this.label = `data ${dbPath.replace(/\/haarseek\.db$/, '')}`;
    this.concurrency = jobs * 2;
    this.store = WriterStore.open(dbPath);
    this.reader = openReadOnly(dbPath, 30_000);
    this.presenceFull = this.presenceQuery(PRESENCE_CHUNK);
  }

  present(ids: readonly number[]): Set<number> {
    const found = new Set<number>();
    for (let i = 0; i < ids.length; i += PRESENCE_CHUNK) {
      const chunk = ids.slice(i, i + PRESENCE_CHUNK);
      const stmt = chunk.length === PRESENCE_CHUNK ? this.presenceFull : this.presenceQuery(chunk.length);
      for (const id of stmt.all(this.space, ...chunk) as number[]) found.add(id);
    }
    return found;
  }

  async add(path: string, id: number, replacing: boolean): Promise<void> {
    const decoded = await this.pool.decode(path);
    if (!decoded.ok) {
      this.settle({ outcome: 'failed', path, id, reason: decoded.reason, message: decoded.message });
      return;
    }
    if (this.staged.length === 0) this.firstStagedAt = performance.now();
    this.staged.push({ path, imageId: id, width: decoded.width, height: decoded.height, sig: decoded.sig, thumb: decoded.thumb, replacing });
    if (this.staged.length >= this.batch.images || performance.now() - this.firstStagedAt >= this.batch.ms) this.flush();
  }

  flush(): void {
    if (this.staged.length === 0) return;
    if (this.lost.aborted) throw this.lost.reason;
    const staged = this.staged;
    this.staged = [];
    if (this.thumbnailsOnly) this.store.setThumbnails(this.space, staged);
    else this.store.putImages(this.space, staged);
    for (const s of staged) this.settle({ outcome: 'added', path: s.path, id: s.imageId, replaced: s.replacing });
  }

  async close(): Promise<void> {
    this.reader.close();
    this.store.close();
  }

  private presenceQuery(n: number): Database.Statement {
    return this.reader.prepare(`SELECT image_id FROM images WHERE db_id = ? AND image_id IN (${new Array(n).fill('?').join(',')})`).pluck();
  }
}
