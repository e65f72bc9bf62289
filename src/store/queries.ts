import type Database from 'better-sqlite3';
import type { SignatureBatch, SpaceFilter, SpaceLoader } from '../index/types.ts';
import { CHANNELS, SIGNATURE_LENGTH, type Signature } from '../signature/types.ts';
import { copyPackedCoefs, type RawImageRow, signatureOfRow } from './codec.ts';

/** Images per batch when a whole space is read: ~1 MB of arrays, reused batch after batch. */
const LOAD_BATCH = 4096;

export interface StoredImage {
  width: number;
  height: number;
  sig: Signature;
}

/** Read-only queries, shared by the writer's and the readers' connections. */
export class StoreQueries {
  private readonly stmts;
  /** Prepared on first use: a schema-1 file has no thumb column. */
  private thumbStmt: Database.Statement | undefined;

  constructor(protected readonly db: Database.Database) {
    this.stmts = {
      spaces: db.prepare('SELECT db_id FROM spaces ORDER BY db_id').pluck(),
      spacesCreated: db.prepare('SELECT db_id, created_at FROM spaces').raw(),
      hasSpace: db.prepare('SELECT 1 FROM spaces WHERE db_id = ?').pluck(),
      image: db.prepare('SELECT image_id, width, height, avgl_y, avgl_i, avgl_q, sig FROM images WHERE db_id = ? AND image_id = ?').raw(),
      spaceSignatures: db.prepare('SELECT image_id, avgl_y, avgl_i, avgl_q, sig FROM images WHERE db_id = ?').raw(),
      signaturesAfter: db.prepare('SELECT image_id, avgl_y, avgl_i, avgl_q, sig FROM images WHERE db_id = ? AND image_id > ? ORDER BY image_id LIMIT ?').raw(),
      keywordsOf: db.prepare('SELECT keyword FROM keywords WHERE db_id = ? AND image_id = ? ORDER BY keyword').pluck(),
      lastSeq: db.prepare("SELECT coalesce(max(seq), 0) FROM changes").pluck(),
      firstSeq: db.prepare('SELECT min(seq) FROM changes').pluck(),
      changeAt: db.prepare('SELECT op, db_id, image_id FROM changes WHERE seq = ?'),
      changesSince: db.prepare(
        `SELECT c.seq, c.op, c.db_id, c.image_id, i.width, i.avgl_y, i.avgl_i, i.avgl_q, i.sig
         FROM changes c LEFT JOIN images i ON c.op = 'image' AND i.db_id = c.db_id AND i.image_id = c.image_id
         WHERE c.seq > ? ORDER BY c.seq`,
      ).raw(),
    };
  }

  spaceIds(): number[] {
    return this.stmts.spaces.all() as number[];
  }

  /** When each space was created (ms): with the space id, what tells one database's space from another's. */
  spacesCreatedAt(): Map<number, number> {
    return new Map(this.stmts.spacesCreated.all() as Array<[number, number]>);
  }

  hasSpace(dbId: number): boolean {
    return this.stmts.hasSpace.get(dbId) !== undefined;
  }

  image(dbId: number, imageId: number): StoredImage | undefined {
    const row = this.stmts.image.get(dbId, imageId) as RawImageRow | undefined;
    return row && { width: row[1], height: row[2], sig: signatureOfRow(row) };
  }

  /** The image's stored thumbnail, or undefined (imported images, or a schema-1 file). */
  thumbnail(dbId: number, imageId: number): Uint8Array | undefined {
    try {
      this.thumbStmt ??= this.db.prepare('SELECT thumb FROM images WHERE db_id = ? AND image_id = ?').pluck();
    } catch {
      return undefined;
    }
    const thumb = this.thumbStmt.get(dbId, imageId);
    return thumb instanceof Uint8Array ? thumb : undefined;
  }

  keywordsOf(dbId: number, imageId: number): number[] {
    return this.stmts.keywordsOf.all(dbId, imageId) as number[];
  }

  /** Images having all (and) or any (or) of the keywords, ascending id, at most limit. */
  imagesWithKeywords(dbId: number, keywords: number[], all: boolean, limit: number): number[] {
    if (keywords.length === 0) return [];
    const marks = keywords.map(() => '?').join(',');
    const having = all ? `HAVING count(DISTINCT keyword) = ${new Set(keywords).size}` : '';
    const sql = `SELECT image_id FROM keywords WHERE db_id = ? AND keyword IN (${marks}) GROUP BY image_id ${having} ORDER BY image_id LIMIT ?`;
    return this.db.prepare(sql).pluck().all(dbId, ...keywords, limit) as number[];
  }

  /** Keyword frequencies over the given images (all images when empty), most used first. */
  keywordCounts(dbId: number, imageIds: number[], excluded: number[], limit: number): Array<[keyword: number, count: number]> {
    const params: number[] = [dbId];
    let where = 'db_id = ?';
    if (imageIds.length > 0) {
      where += ` AND image_id IN (${imageIds.map(() => '?').join(',')})`;
      params.push(...imageIds);
    }
    if (excluded.length > 0) {
      where += ` AND keyword NOT IN (${excluded.map(() => '?').join(',')})`;
      params.push(...excluded);
    }
    const sql = `SELECT keyword, count(*) AS n FROM keywords WHERE ${where} GROUP BY keyword ORDER BY n DESC, keyword LIMIT ?`;
    return this.db.prepare(sql).raw().all(...params, limit) as Array<[number, number]>;
  }

  /**
   * Streams every space (or only those given) with its images to `load`, all read in
   * one transaction: a consistent snapshot, with the change-log position it matches.
   * Rows are never held all at once, so a million images load in bounded extra memory.
   */
  snapshot(only: SpaceFilter | undefined, load: SpaceLoader): { seq: number; knownSpaces: number[] } {
    return this.db.transaction(() => {
      const knownSpaces = this.spaceIds();
      for (const dbId of knownSpaces) if (only === undefined || only.has(dbId)) load(dbId, this.signatureBatches(dbId));
      return { seq: this.stmts.lastSeq.get() as number, knownSpaces };
    })();
  }

  /**
   * Like snapshot, but read in short transactions of LOAD_BATCH images each, so a
   * writer on another connection commits between them instead of waiting seconds for
   * one long read (rollback-journal mode). The result is not one point in time: it is
   * labelled with the log position read before the scan, and every image that changed
   * during the scan has a change after that position, which replaying brings back to
   * its current state. For index segments, which readers always complete by replay.
   */
  scan(only: SpaceFilter | undefined, load: SpaceLoader): { seq: number; knownSpaces: number[] } {
    const { seq, knownSpaces } = this.db.transaction(() => ({ seq: this.stmts.lastSeq.get() as number, knownSpaces: this.spaceIds() }))();
    for (const dbId of knownSpaces) if (only === undefined || only.has(dbId)) load(dbId, this.scanBatches(dbId));
    return { seq, knownSpaces };
  }

  private *scanBatches(dbId: number): Generator<SignatureBatch> {
    const batch = newBatch();
    let after = -Infinity;
    for (;;) {
      const rows = this.stmts.signaturesAfter.all(dbId, after, LOAD_BATCH) as SignatureRow[];
      if (rows.length === 0) return;
      for (let k = 0; k < rows.length; k++) fillBatch(batch, k, rows[k]);
      batch.count = rows.length;
      after = rows[rows.length - 1][0];
      yield batch;
      if (rows.length < LOAD_BATCH) return;
    }
  }

  private *signatureBatches(dbId: number): Generator<SignatureBatch> {
    const batch = newBatch();
    let k = 0;
    for (const row of this.stmts.spaceSignatures.iterate(dbId) as IterableIterator<SignatureRow>) {
      fillBatch(batch, k, row);
      if (++k === LOAD_BATCH) {
        batch.count = k;
        yield batch;
        k = 0;
      }
    }
    if (k > 0) {
      batch.count = k;
      yield batch;
    }
  }

  lastSeq(): number {
    return this.stmts.lastSeq.get() as number;
  }

  /** The change-log row at seq, or null when the log has no such row (trimmed, or not written yet). */
  changeAt(seq: number): { op: string; dbId: number; imageId: number | null } | null {
    const row = this.stmts.changeAt.get(seq) as { op: string; db_id: number; image_id: number | null } | undefined;
    return row ? { op: row.op, dbId: row.db_id, imageId: row.image_id } : null;
  }

  /**
   * Changes after seq, each with the image's current signature (none when it is gone),
   * or null when the log no longer reaches back to seq (a full reload is needed).
   */
  changesSince(seq: number): { seq: number; changes: ChangeRow[] } | null {
    return this.db.transaction(() => {
      const first = this.stmts.firstSeq.get() as number | null;
      const last = this.stmts.lastSeq.get() as number;
      if (last === seq) return { seq, changes: [] };
      if (first === null || first > seq + 1) return null;
      const changes = (this.stmts.changesSince.all(seq) as RawChangeRow[]).map(toChange);
      return { seq: changes.length > 0 ? changes[changes.length - 1].seq : seq, changes };
    })();
  }
}

function newBatch(): SignatureBatch {
  return { count: 0, ids: new Float64Array(LOAD_BATCH), avgl: new Float64Array(LOAD_BATCH * CHANNELS), coefs: new Int16Array(LOAD_BATCH * SIGNATURE_LENGTH) };
}

function fillBatch(batch: SignatureBatch, k: number, row: SignatureRow): void {
  batch.ids[k] = row[0];
  batch.avgl[k * CHANNELS] = row[1];
  batch.avgl[k * CHANNELS + 1] = row[2];
  batch.avgl[k * CHANNELS + 2] = row[3];
  copyPackedCoefs(row[4], batch.coefs, k);
}

type SignatureRow = [imageId: number, y: number, i: number, q: number, sig: Buffer];

type RawChangeRow = [seq: number, op: 'image' | 'space', dbId: number, imageId: number | null, width: number | null, y: number, i: number, q: number, sig: Buffer | null];

export type ChangeRow =
  | { seq: number; op: 'space'; dbId: number }
  | { seq: number; op: 'image'; dbId: number; imageId: number; sig: Signature | null };

function toChange(row: RawChangeRow): ChangeRow {
  if (row[1] === 'space') return { seq: row[0], op: 'space', dbId: row[2] };
  const sig = row[8] === null ? null : signatureOfRow([row[3]!, row[4]!, 0, row[5], row[6], row[7], row[8]]);
  return { seq: row[0], op: 'image', dbId: row[2], imageId: row[3]!, sig };
}
