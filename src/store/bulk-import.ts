import type Database from 'better-sqlite3';
import { SIGNATURE_LENGTH } from '../signature/types.ts';

/** Same bound as the writer's: change-log rows kept for readers to replay. */
const CHANGE_LOG_KEEP = 200_000;

/**
 * What an imported iskdaemon file said beyond haarseek's own columns, kept only so that
 * exporting the space again gives back the same bytes: iskdaemon lists each signature
 * in the order its transform found the coefficients (ascending magnitude), which the
 * sorted `images.sig` cannot tell, and keywords in hash-table order. A row is used only
 * while its coefficients still equal the image's stored signature (and its keywords
 * the stored set), so an image replaced or re-tagged later simply falls back to
 * haarseek's order; nothing else reads this table.
 */
const FILE_ORDER_DDL = `
CREATE TABLE IF NOT EXISTS isk_file_order (
  db_id INTEGER NOT NULL,
  image_id INTEGER NOT NULL,
  sig BLOB,
  keywords BLOB,
  PRIMARY KEY (db_id, image_id)
) WITHOUT ROWID;
`;

export interface BulkImage {
  imageId: number;
  width: number;
  height: number;
  avgl: ArrayLike<number>;
  /** 240 bytes: the signature as the writer stores it (int16 LE, each channel ascending). */
  sig: Uint8Array;
  keywords: ArrayLike<number>;
  /** 240 bytes in the source file's coefficient order, or null when that is `sig`'s. */
  fileSig: Uint8Array | null;
  /** The keywords as int32 LE in the source file's order, or null when nothing to keep. */
  fileKeywords: Uint8Array | null;
}

/**
 * Bulk writes with the rows and change-log entries the writer itself makes: a replaced
 * space gets one 'space' change, so running readers reload it instead of replaying a
 * million image changes. Runs inside a transaction the caller holds (see
 * runTransaction), so a refused file leaves the database as it was.
 */
export class BulkImportWriter {
  private readonly s;
  private hasOrderTable: boolean;
  private orderStmts: { put: Database.Statement; clear: Database.Statement } | null = null;

  constructor(private readonly db: Database.Database) {
    this.s = {
      count: db.prepare('SELECT count(*) FROM images WHERE db_id = ?').pluck(),
      createSpace: db.prepare('INSERT OR IGNORE INTO spaces (db_id, created_at) VALUES (?, ?)'),
      deleteImages: db.prepare('DELETE FROM images WHERE db_id = ?'),
      deleteKeywords: db.prepare('DELETE FROM keywords WHERE db_id = ?'),
      putImage: db.prepare('INSERT INTO images (db_id, image_id, width, height, avgl_y, avgl_i, avgl_q, sig) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
      addKeyword: db.prepare('INSERT OR IGNORE INTO keywords (db_id, image_id, keyword) VALUES (?, ?, ?)'),
      logSpace: db.prepare("INSERT INTO changes (op, db_id) VALUES ('space', ?)"),
      trim: db.prepare('DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?'),
    };
    this.hasOrderTable = tableExists(db, 'isk_file_order');
  }

  /** Empties (or creates) a space and logs it for a reload; returns the images it held. */
  replaceSpace(dbId: number): number {
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
    this.s.putImage.run(dbId, image.imageId, image.width, image.height, avgl[0], avgl[1], avgl[2], image.sig);
    for (let k = 0; k < image.keywords.length; k++) this.s.addKeyword.run(dbId, image.imageId, image.keywords[k]);
    if (image.fileSig !== null || image.fileKeywords !== null) this.order().put.run(dbId, image.imageId, image.fileSig, image.fileKeywords);
  }

  /** Keeps the change log as short as the writer keeps it. */
  finish(): void {
    this.s.trim.run(CHANGE_LOG_KEEP);
  }

  private order(): { put: Database.Statement; clear: Database.Statement } {
    if (!this.orderStmts) {
      if (!this.hasOrderTable) {
        this.db.exec(FILE_ORDER_DDL);
        this.hasOrderTable = true;
      }
      this.orderStmts = {
        put: this.db.prepare('INSERT OR REPLACE INTO isk_file_order (db_id, image_id, sig, keywords) VALUES (?, ?, ?, ?)'),
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
  fileSig: Buffer | null,
  fileKeywords: Buffer | null,
];

/** Reads spaces for an export; call inside one read transaction for a consistent copy. */
export class SpaceExportReader {
  private readonly s;

  constructor(db: Database.Database) {
    const order = tableExists(db, 'isk_file_order');
    this.s = {
      spaces: db.prepare('SELECT db_id FROM spaces ORDER BY db_id').pluck(),
      ids: db.prepare('SELECT image_id FROM images WHERE db_id = ? ORDER BY image_id').pluck(),
      sigs: db.prepare('SELECT sig FROM images WHERE db_id = ? ORDER BY image_id').pluck(),
      rows: db
        .prepare(
          `SELECT i.image_id, i.width, i.height, i.avgl_y, i.avgl_i, i.avgl_q, i.sig,
             (SELECT group_concat(k.keyword) FROM (SELECT keyword FROM keywords WHERE db_id = i.db_id AND image_id = i.image_id ORDER BY keyword) k),
             ${order ? 'o.sig, o.keywords' : 'NULL, NULL'}
           FROM images i ${order ? 'LEFT JOIN isk_file_order o ON o.db_id = i.db_id AND o.image_id = i.image_id' : ''}
           WHERE i.db_id = ? ORDER BY i.image_id`,
        )
        .raw(),
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

/**
 * runTransaction spread over event-loop turns: at most sliceMs of work at a time, so
 * timers (the writer lock's refresh) and I/O keep running during a long import. The
 * connection must not be used by anything else until the promise settles: another
 * write on it would join this transaction.
 */
export async function runTransactionAsync<T>(db: Database.Database, job: Generator<void, T>, sliceMs = 50, mode: 'read' | 'write' = 'write'): Promise<T> {
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
        started = performance.now();
      }
    }
  } catch (err) {
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
