import type Database from 'better-sqlite3';
import { SIGNATURE_LENGTH } from '../signature/types.ts';

/** Images per multi-row INSERT. */
const IMAGE_BATCH = 64;
/** Same bound as the writer's: change-log rows kept for readers to replay. */
const CHANGE_LOG_KEEP = 200_000;

/**
 * What an imported iskdaemon file said beyond haarseek's own columns, kept only so an
 * export of the space gives back the same bytes (see src/import/file-order.ts for the
 * entries packed in each chunk). Chunks hold entries in ascending image id; an entry is
 * used only while it matches the image's stored signature, so images replaced later
 * fall back to haarseek's order. Nothing else reads this table.
 */
const FILE_ORDER_DDL = `
CREATE TABLE IF NOT EXISTS isk_file_order (
  db_id INTEGER NOT NULL,
  first_image_id INTEGER NOT NULL,
  entries BLOB NOT NULL,
  PRIMARY KEY (db_id, first_image_id)
);
`;

export interface BulkImage {
  imageId: number;
  width: number;
  height: number;
  avgl: ArrayLike<number>;
  /** 240 bytes: the signature as the writer stores it (int16 LE, each channel ascending). */
  sig: Uint8Array;
  keywords: ArrayLike<number>;
}

/**
 * Bulk writes with the rows and change-log entries the writer itself makes: a replaced
 * space gets one 'space' change, so running readers reload it instead of replaying a
 * million image changes. Runs inside a transaction the caller holds (see
 * runTransaction), so a refused file leaves the database as it was.
 */
export class BulkImportWriter {
  private readonly s;
  /** Rows waiting for one multi-row INSERT (fewer calls into SQLite per image). */
  private readonly pending: unknown[] = new Array(IMAGE_BATCH * 8);
  private readonly blobs = Array.from({ length: IMAGE_BATCH }, () => Buffer.alloc(SIGNATURE_LENGTH * 2));
  private pendingRows = 0;
  private hasOrderTable: boolean;
  private orderStmts: { put: Database.Statement; clear: Database.Statement } | null = null;

  constructor(private readonly db: Database.Database) {
    this.s = {
      count: db.prepare('SELECT count(*) FROM images WHERE db_id = ?').pluck(),
      createSpace: db.prepare('INSERT OR IGNORE INTO spaces (db_id, created_at) VALUES (?, ?)'),
      deleteImages: db.prepare('DELETE FROM images WHERE db_id = ?'),
      deleteKeywords: db.prepare('DELETE FROM keywords WHERE db_id = ?'),
      putImage: db.prepare('INSERT INTO images (db_id, image_id, width, height, avgl_y, avgl_i, avgl_q, sig) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      putImages: db.prepare(
        `INSERT INTO images (db_id, image_id, width, height, avgl_y, avgl_i, avgl_q, sig) VALUES ${Array(IMAGE_BATCH).fill('(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      ),
      addKeyword: db.prepare('INSERT OR IGNORE INTO keywords (db_id, image_id, keyword) VALUES (?, ?, ?)'),
      logSpace: db.prepare("INSERT INTO changes (op, db_id) VALUES ('space', ?)"),
      trim: db.prepare('DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?'),
    };
    this.hasOrderTable = tableExists(db, 'isk_file_order');
  }

  /** Empties (or creates) a space and logs it for a reload; returns the images it held. */
  replaceSpace(dbId: number): number {
    this.flush();
    const before = this.s.count.get(dbId) as number;
    this.s.deleteImages.run(dbId);
    this.s.deleteKeywords.run(dbId);
    if (this.hasOrderTable) this.order().clear.run(dbId);
    this.s.createSpace.run(dbId, Date.now());
    this.s.logSpace.run(dbId);
    return before;
  }

  /** Adds an image to a space emptied by replaceSpace (ids must be new in the space). */
  put(dbId: number, image: BulkImage): void {
    if (image.sig.byteLength !== SIGNATURE_LENGTH * 2) throw new RangeError(`signature blob of ${image.sig.byteLength} bytes`);
    const { avgl } = image;
    const row = this.pendingRows * 8;
    const blob = this.blobs[this.pendingRows];
    blob.set(image.sig);
    const p = this.pending;
    p[row] = dbId;
    p[row + 1] = image.imageId;
    p[row + 2] = image.width;
    p[row + 3] = image.height;
    p[row + 4] = avgl[0];
    p[row + 5] = avgl[1];
    p[row + 6] = avgl[2];
    p[row + 7] = blob;
    if (++this.pendingRows === IMAGE_BATCH) this.flush();
    for (let k = 0; k < image.keywords.length; k++) this.s.addKeyword.run(dbId, image.imageId, image.keywords[k]);
  }

  /** Stores one chunk of file-order entries (src/import/file-order.ts) for a space. */
  putFileOrder(dbId: number, firstImageId: number, chunk: Uint8Array): void {
    this.order().put.run(dbId, firstImageId, chunk);
  }

  /** Writes the images still waiting; then keeps the change log as short as the writer keeps it. */
  finish(): void {
    this.flush();
    this.s.trim.run(CHANGE_LOG_KEEP);
  }

  private flush(): void {
    if (this.pendingRows === IMAGE_BATCH) {
      this.s.putImages.run(this.pending);
    } else {
      for (let r = 0; r < this.pendingRows; r++) this.s.putImage.run(this.pending.slice(r * 8, r * 8 + 8));
    }
    this.pendingRows = 0;
  }

  private order(): { put: Database.Statement; clear: Database.Statement } {
    if (!this.orderStmts) {
      if (!this.hasOrderTable) {
        this.db.exec(FILE_ORDER_DDL);
        this.hasOrderTable = true;
      }
      this.orderStmts = {
        put: this.db.prepare('INSERT INTO isk_file_order (db_id, first_image_id, entries) VALUES (?, ?, ?)'),
        clear: this.db.prepare('DELETE FROM isk_file_order WHERE db_id = ?'),
      };
    }
    return this.orderStmts;
  }
}

/** One stored image, as an export reads it. Buffers are valid until the next row. */
export type ExportRow = [
  imageId: number,
  width: number,
  height: number,
  y: number,
  i: number,
  q: number,
  sig: Buffer,
  /** Comma-separated keywords, ascending, or null. */
  keywords: string | null,
];

/** Reads spaces for an export; call inside one read transaction for a consistent copy. */
export class SpaceExportReader {
  private readonly s;

  constructor(db: Database.Database) {
    this.s = {
      spaces: db.prepare('SELECT db_id FROM spaces ORDER BY db_id').pluck(),
      ids: db.prepare('SELECT image_id FROM images WHERE db_id = ? ORDER BY image_id').pluck(),
      sigs: db.prepare('SELECT sig FROM images WHERE db_id = ? ORDER BY image_id').pluck(),
      rows: db
        .prepare(
          `SELECT i.image_id, i.width, i.height, i.avgl_y, i.avgl_i, i.avgl_q, i.sig,
             (SELECT group_concat(k.keyword) FROM (SELECT keyword FROM keywords WHERE db_id = i.db_id AND image_id = i.image_id ORDER BY keyword) k)
           FROM images i WHERE i.db_id = ? ORDER BY i.image_id`,
        )
        .raw(),
      fileOrder: tableExists(db, 'isk_file_order')
        ? db.prepare('SELECT entries FROM isk_file_order WHERE db_id = ? ORDER BY first_image_id').pluck()
        : null,
    };
  }

  spaceIds(): number[] {
    return this.s.spaces.all() as number[];
  }

  /** The space's image ids, ascending. */
  ids(dbId: number): Float64Array {
    return Float64Array.from(this.s.ids.iterate(dbId) as IterableIterator<number>);
  }

  /** Every stored signature blob of the space, ascending id. */
  signatures(dbId: number): IterableIterator<Buffer> {
    return this.s.sigs.iterate(dbId) as IterableIterator<Buffer>;
  }

  rows(dbId: number): IterableIterator<ExportRow> {
    return this.s.rows.iterate(dbId) as IterableIterator<ExportRow>;
  }

  /** The space's file-order chunks, ascending image id (none for spaces not imported from a file). */
  fileOrderChunks(dbId: number): IterableIterator<Buffer> {
    return this.s.fileOrder ? (this.s.fileOrder.iterate(dbId) as IterableIterator<Buffer>) : [][Symbol.iterator]();
  }
}

/**
 * Runs a stepwise job (a generator that yields between batches) in one write
 * transaction: committed when it returns, rolled back when it throws.
 */
export function runTransaction<T>(db: Database.Database, job: Generator<void, T>): T {
  return db.transaction(() => {
    for (;;) {
      const step = job.next();
      if (step.done) return step.value;
    }
  }).immediate();
}

export interface SliceOptions {
  /** Longest stretch of work between two event-loop turns (default 50 ms). */
  sliceMs?: number;
  /** Aborting rolls the transaction back at the next slice boundary. */
  signal?: AbortSignal;
}

/**
 * runTransaction spread over event-loop turns: at most sliceMs of work at a time, so
 * timers (the writer lock's refresh) and I/O keep running during a long import. The
 * connection must not be used by anything else until the promise settles: another
 * write on it would join this transaction.
 */
export async function runTransactionAsync<T>(db: Database.Database, job: Generator<void, T>, options: SliceOptions = {}, mode: 'read' | 'write' = 'write'): Promise<T> {
  const sliceMs = options.sliceMs ?? 50;
  db.exec(mode === 'write' ? 'BEGIN IMMEDIATE' : 'BEGIN');
  try {
    let started = performance.now();
    for (;;) {
      const step = job.next();
      if (step.done) {
        db.exec('COMMIT');
        return step.value;
      }
      if (performance.now() - started >= sliceMs) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        options.signal?.throwIfAborted();
        started = performance.now();
      }
    }
  } catch (err) {
    job.return(undefined as T);
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/** runTransaction for reads: one consistent snapshot for the whole job. */
export function runReadTransaction<T>(db: Database.Database, job: Generator<void, T>): T {
  return db.transaction(() => {
    for (;;) {
      const step = job.next();
      if (step.done) return step.value;
    }
  }).deferred();
}

function tableExists(db: Database.Database, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}
