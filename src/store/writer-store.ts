import { closeSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { SIGNATURE_LENGTH, type Signature } from '../signature/types.ts';
import { encodeCoefs } from './codec.ts';
import { openReadOnly, openWritable } from './open.ts';
import { StoreQueries } from './queries.ts';
import { FileError } from '../errors.ts';

/** How many change-log rows are kept for readers to replay; older readers reload fully. */
const CHANGE_LOG_KEEP = 200_000;
/** Rows always kept, whatever covers them: a reader mid-refresh still finds its next change. */
const CHANGE_LOG_MIN_KEEP = 1_000;
const TRIM_EVERY = 1_000;

/**
 * Something that still needs change-log rows (a publisher to other hosts, say): rows
 * after the sequence it returns are never trimmed.
 */
export type ChangeLogHold = () => number;

/**
 * The writer's view of the database. Every method is one transaction, committed (and
 * fsynced: synchronous=FULL) before it returns, so an acknowledged write survives kill -9.
 */
/** Every column of images but the thumbnail, in table order. */
const IMAGE_COLUMNS = 'db_id, image_id, width, height, avgl_y, avgl_i, avgl_q, sig';

export class WriterStore extends StoreQueries {
  private writesSinceTrim = 0;
  private readonly w;
  private readonly holds = new Set<ChangeLogHold>();
  private readonly commitListeners = new Set<() => void>();
  /** The change-log position that index segments cover (rows up to it are not needed to rebuild). */
  private coveredSeq = 0;

  private constructor(db: Database.Database, readonly path: string) {
    super(db);
    this.w = {
      createSpace: db.prepare('INSERT OR IGNORE INTO spaces (db_id, created_at) VALUES (?, ?)'),
      putImage: db.prepare(
        'INSERT OR REPLACE INTO images (db_id, image_id, width, height, avgl_y, avgl_i, avgl_q, sig, thumb) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      deleteImage: db.prepare('DELETE FROM images WHERE db_id = ? AND image_id = ?'),
      deleteImageKeywords: db.prepare('DELETE FROM keywords WHERE db_id = ? AND image_id = ?'),
      deleteSpaceImages: db.prepare('DELETE FROM images WHERE db_id = ?'),
      deleteSpaceKeywords: db.prepare('DELETE FROM keywords WHERE db_id = ?'),
      deleteSpace: db.prepare('DELETE FROM spaces WHERE db_id = ?'),
      addKeyword: db.prepare('INSERT OR IGNORE INTO keywords (db_id, image_id, keyword) VALUES (?, ?, ?)'),
      removeKeyword: db.prepare('DELETE FROM keywords WHERE db_id = ? AND image_id = ? AND keyword = ?'),
      logImage: db.prepare("INSERT INTO changes (op, db_id, image_id) VALUES ('image', ?, ?)"),
      logSpace: db.prepare("INSERT INTO changes (op, db_id) VALUES ('space', ?)"),
      trim: db.prepare('DELETE FROM changes WHERE seq < ?'),
    };
  }

  /** Keeps the change-log rows after hold()'s sequence until it moves on; returns the release. */
  holdChanges(hold: ChangeLogHold): () => void {
    this.holds.add(hold);
    return () => this.holds.delete(hold);
  }

  /** Called after every committed write transaction of this connection. */
  onCommit(listener: () => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  /**
   * Says index segments now cover the log up to seq, and trims what nobody needs: rows
   * before the segments' sequence (a bulk load's million rows go at once; the row at
   * it stays, as the fingerprint segment sets are checked against), never the last
   * CHANGE_LOG_MIN_KEEP, never a row a hold still needs.
   */
  coveredBySegments(seq: number): number {
    this.coveredSeq = Math.max(this.coveredSeq, seq);
    return this.trimChanges();
  }

  /** Deletes the rows nobody needs any more; returns how many went. */
  trimChanges(): number {
    const last = this.lastSeq();
    let floor = Math.max(last - CHANGE_LOG_KEEP, Math.min(this.coveredSeq, last - CHANGE_LOG_MIN_KEEP));
    for (const hold of this.holds) floor = Math.min(floor, hold());
    if (floor <= 0) return 0;
    return this.db.transaction(() => this.w.trim.run(floor).changes)();
  }

  static open(path: string): WriterStore {
    return new WriterStore(openWritable(path), path);
  }

  close(): void {
    this.db.close();
  }

  /** Returns false when the space already existed. */
  createSpace(dbId: number): boolean {
    return this.write(() => {
      const created = this.w.createSpace.run(dbId, Date.now()).changes > 0;
      if (created) this.w.logSpace.run(dbId);
      return created;
    });
  }

  /** Deletes a space's images and keywords; drop=true forgets the space too. */
  clearSpace(dbId: number, drop: boolean): void {
    this.write(() => {
      this.w.deleteSpaceImages.run(dbId);
      this.w.deleteSpaceKeywords.run(dbId);
      if (drop) this.w.deleteSpace.run(dbId);
      this.w.logSpace.run(dbId);
    });
  }

  /** Stores (or replaces) an image; creates its space when missing, as iskdaemon did. */
  putImage(dbId: number, imageId: number, width: number, height: number, sig: Signature, thumb?: Uint8Array): void {
    this.write(() => {
      if (this.w.createSpace.run(dbId, Date.now()).changes > 0) this.w.logSpace.run(dbId);
      this.w.putImage.run(dbId, imageId, width, height, sig.avgl[0], sig.avgl[1], sig.avgl[2], encodeCoefs(sig.coefs), thumb ?? null);
      this.w.logImage.run(dbId, imageId);
    });
  }

  /** Many images in one transaction (bulk import); returns how many were stored. */
  putImages(dbId: number, images: Array<{ imageId: number; width: number; height: number; sig: Signature; thumb?: Uint8Array }>): number {
    return this.write(() => {
      if (this.w.createSpace.run(dbId, Date.now()).changes > 0) this.w.logSpace.run(dbId);
      for (const im of images) {
        const { avgl, coefs } = im.sig;
        this.w.putImage.run(dbId, im.imageId, im.width, im.height, avgl[0], avgl[1], avgl[2], encodeCoefs(coefs), im.thumb ?? null);
        this.w.logImage.run(dbId, im.imageId);
      }
      return images.length;
    });
  }

  /**
   * Gives stored images their thumbnails (from their image files): no change-log row, as
   * readers read thumbnails from the file when they check a query, not into the index.
   */
  setThumbnails(dbId: number, images: Array<{ imageId: number; thumb: Uint8Array }>): number {
    const update = this.db.prepare('UPDATE images SET thumb = ? WHERE db_id = ? AND image_id = ?');
    return this.write(() => images.reduce((n, im) => n + update.run(im.thumb, dbId, im.imageId).changes, 0));
  }

  removeImage(dbId: number, imageId: number): boolean {
    return this.write(() => {
      const removed = this.w.deleteImage.run(dbId, imageId).changes > 0;
      this.w.deleteImageKeywords.run(dbId, imageId);
      if (removed) this.w.logImage.run(dbId, imageId);
      return removed;
    });
  }

  /**
   * Keyword edits are logged as 'image' rows (the image's state changed): readers, which
   * hold no keywords, just re-read the image; a replica on another host copies them.
   */
  addKeywords(dbId: number, imageId: number, keywords: number[]): void {
    this.write(() => {
      let added = 0;
      for (const kw of keywords) added += this.w.addKeyword.run(dbId, imageId, kw).changes;
      if (added > 0) this.w.logImage.run(dbId, imageId);
    });
  }

  removeKeywords(dbId: number, imageId: number, keywords: number[] | 'all'): number {
    return this.write(() => {
      let removed = 0;
      if (keywords === 'all') removed = this.w.deleteImageKeywords.run(dbId, imageId).changes;
      else for (const kw of keywords) removed += this.w.removeKeyword.run(dbId, imageId, kw).changes;
      if (removed > 0) this.w.logImage.run(dbId, imageId);
      return removed;
    });
  }

  /**
   * An online copy to path through SQLite's backup API, some pages per turn of the event
   * loop: writes on this connection meanwhile are carried into the copy, so it is
   * consistent as of its end, and no write waits for it (VACUUM INTO would hold a read
   * lock that every commit waits behind).
   */
  async backupTo(path: string): Promise<void> {
    await this.db.backup(path, { progress: () => 4096 });
  }

  /** A consistent point-in-time copy of every space, written atomically to path. */
  saveAllTo(path: string): void {
    const tmp = `${path}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    try {
      this.db.prepare('VACUUM INTO ?').run(tmp);
      fsyncFile(tmp);
      renameSync(tmp, path);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /** A haarseek file holding one space (with its keywords), written atomically to path. */
  saveSpaceTo(dbId: number, path: string): number {
    if (!this.hasSpace(dbId)) throw new FileError(`database space ${dbId} does not exist`);
    const tmp = `${path}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    try {
      openWritable(tmp).close();
      this.db.prepare('ATTACH DATABASE ? AS export').run(tmp);
      let count = 0;
      try {
        this.db.transaction(() => {
          this.db.prepare('INSERT INTO export.spaces SELECT * FROM main.spaces WHERE db_id = ?').run(dbId);
          count = this.db.prepare('INSERT INTO export.images SELECT * FROM main.images WHERE db_id = ?').run(dbId).changes;
          this.db.prepare('INSERT INTO export.keywords SELECT * FROM main.keywords WHERE db_id = ?').run(dbId);
        })();
      } finally {
        this.db.prepare('DETACH DATABASE export').run();
      }
      fsyncFile(tmp);
      renameSync(tmp, path);
      return count;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /**
   * Replaces spaces with their content in a haarseek file written by saveAllTo or
   * saveSpaceTo. target: every space of the file (all current spaces are dropped first),
   * or one space id (taken from the file's space of that id, or its only space).
   * Returns the number of images now in the restored space(s).
   */
  restoreFrom(path: string, target: 'all' | number): number {
    const source = openReadOnly(path, 5000);
    const sourceSpaces = (source.prepare('SELECT db_id FROM spaces').pluck().all() as number[]);
    source.close();
    let from: number | undefined;
    if (target !== 'all') {
      if (sourceSpaces.includes(target)) from = target;
      else if (sourceSpaces.length === 1) from = sourceSpaces[0];
      else throw new FileError(`${path} holds ${sourceSpaces.length} database spaces and none is ${target}`);
    }
    this.db.prepare('ATTACH DATABASE ? AS import').run(path);
    try {
      // A file saved before thumbnails existed (schema 1) has no thumb column.
      const thumbOf = (this.db.prepare("SELECT count(*) FROM pragma_table_info('images', 'import') WHERE name = 'thumb'").pluck().get() as number) > 0 ? 'thumb' : 'NULL';
      // A damaged signature would make every later index load of this database fail.
      const damaged = this.db
        .prepare(`SELECT count(*) FROM import.images WHERE (? IS NULL OR db_id = ?) AND (typeof(sig) != 'blob' OR length(sig) != ${SIGNATURE_LENGTH * 2})`)
        .pluck()
        .get(from ?? null, from ?? null) as number;
      if (damaged > 0) throw new FileError(`${path}: ${damaged} stored signature(s) are damaged (not ${SIGNATURE_LENGTH * 2}-byte blobs); nothing was loaded`);
      return this.write(() => {
        if (target === 'all') {
          const touched = new Set([...this.spaceIds(), ...sourceSpaces]);
          this.db.exec('DELETE FROM main.images; DELETE FROM main.keywords; DELETE FROM main.spaces;');
          this.db.exec('INSERT INTO main.spaces SELECT * FROM import.spaces');
          const n = this.db.prepare(`INSERT INTO main.images (${IMAGE_COLUMNS}, thumb) SELECT ${IMAGE_COLUMNS}, ${thumbOf} FROM import.images`).run().changes;
          this.db.exec('INSERT INTO main.keywords SELECT * FROM import.keywords');
          for (const dbId of touched) this.w.logSpace.run(dbId);
          return n;
        }
        this.w.deleteSpaceImages.run(target);
        this.w.deleteSpaceKeywords.run(target);
        this.w.createSpace.run(target, Date.now());
        const n = this.db
          .prepare(`INSERT INTO main.images (${IMAGE_COLUMNS}, thumb) SELECT ?, image_id, width, height, avgl_y, avgl_i, avgl_q, sig, ${thumbOf} FROM import.images WHERE db_id = ?`)
          .run(target, from).changes;
        this.db.prepare('INSERT INTO main.keywords SELECT ?, image_id, keyword FROM import.keywords WHERE db_id = ?').run(target, from);
        this.w.logSpace.run(target);
        return n;
      });
    } finally {
      this.db.prepare('DETACH DATABASE import').run();
    }
  }

  private write<T>(body: () => T): T {
    const result = this.db.transaction(body)();
    if (++this.writesSinceTrim >= TRIM_EVERY) {
      this.writesSinceTrim = 0;
      this.trimChanges();
    }
    for (const listener of this.commitListeners) listener();
    return result;
  }
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
