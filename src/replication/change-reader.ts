import Database from 'better-sqlite3';
import { openReadOnly } from '../store/open.ts';
import { type ChangeMessage, type ImagePayload, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, type SpaceImagePayload } from './protocol.ts';

type ImageRow = [imageId: number, w: number, h: number, y: number, i: number, q: number, sig: Buffer, thumb: Buffer | null];

/**
 * The writer's change-log rows as messages, read on a connection of their own (read
 * only), each read in one transaction so a message never holds half a commit. Each
 * carries the image's (or space's) state at the time it is read, which can be newer
 * than the row: applied in order, the replica still ends where the writer is.
 */
export class ChangeReader {
  private readonly db: Database.Database;
  private readonly s;

  constructor(path: string) {
    this.db = openReadOnly(path, 30_000);
    this.s = {
      first: this.db.prepare('SELECT min(seq) FROM changes').pluck(),
      last: this.db.prepare('SELECT coalesce(max(seq), 0) FROM changes').pluck(),
      after: this.db.prepare('SELECT seq, op, db_id, image_id FROM changes WHERE seq > ? ORDER BY seq LIMIT ?').raw(),
      image: this.db.prepare('SELECT image_id, width, height, avgl_y, avgl_i, avgl_q, sig, thumb FROM images WHERE db_id = ? AND image_id = ?').raw(),
      keywords: this.db.prepare('SELECT keyword FROM keywords WHERE db_id = ? AND image_id = ? ORDER BY keyword').pluck(),
      space: this.db.prepare('SELECT created_at FROM spaces WHERE db_id = ?').pluck(),
      spaceCount: this.db.prepare('SELECT count(*) FROM images WHERE db_id = ?').pluck(),
      spaceImages: this.db.prepare('SELECT image_id, width, height, avgl_y, avgl_i, avgl_q, sig, thumb FROM images WHERE db_id = ? ORDER BY image_id').raw(),
      spaceKeywords: this.db.prepare('SELECT image_id, keyword FROM keywords WHERE db_id = ? ORDER BY image_id, keyword').raw(),
    };
  }

  bounds(): { first: number | null; last: number } {
    return this.db.transaction(() => ({ first: this.s.first.get() as number | null, last: this.s.last.get() as number }))();
  }

  /** Up to `limit` rows after seq, as messages. */
  messagesAfter(seq: number, limit: number): ChangeMessage[] {
    return this.db.transaction(() => {
      const rows = this.s.after.all(seq, limit) as Array<[number, 'image' | 'space', number, number | null]>;
      return rows.map(([s, op, dbId, imageId]) => (op === 'image' ? this.imageMessage(s, dbId, imageId!) : this.spaceMessage(s, dbId)));
    })();
  }

  close(): void {
    this.db.close();
  }

  private imageMessage(seq: number, db: number, id: number): ChangeMessage {
    const row = this.s.image.get(db, id) as ImageRow | undefined;
    return { v: PROTOCOL_VERSION, seq, op: 'image', db, id, image: row ? payload(row, this.s.keywords.all(db, id) as number[]) : null };
  }

  private spaceMessage(seq: number, db: number): ChangeMessage {
    const createdAt = this.s.space.get(db) as number | undefined;
    if (createdAt === undefined) return { v: PROTOCOL_VERSION, seq, op: 'space', db, space: null };
    // An image is at least ~400 bytes of JSON (2 KB more with a thumbnail): a big space is never read whole.
    if ((this.s.spaceCount.get(db) as number) > MAX_MESSAGE_BYTES / 400) return { v: PROTOCOL_VERSION, seq, op: 'space', db, snapshot: true };
    const keywords = new Map<number, number[]>();
    for (const [imageId, kw] of this.s.spaceKeywords.all(db) as Array<[number, number]>) {
      const list = keywords.get(imageId) ?? [];
      list.push(kw);
      keywords.set(imageId, list);
    }
    const images: SpaceImagePayload[] = [];
    let bytes = 0;
    for (const row of this.s.spaceImages.iterate(db) as IterableIterator<ImageRow>) {
      const image = { id: row[0], ...payload(row, keywords.get(row[0]) ?? []) };
      bytes += 120 + image.sig.length + (image.thumb?.length ?? 0) + image.kw.length * 12;
      if (bytes > MAX_MESSAGE_BYTES) return { v: PROTOCOL_VERSION, seq, op: 'space', db, snapshot: true };
      images.push(image);
    }
    return { v: PROTOCOL_VERSION, seq, op: 'space', db, space: { createdAt, images } };
  }
}

function payload(row: ImageRow, kw: number[]): ImagePayload {
  return {
    w: row[1],
    h: row[2],
    avgl: [row[3], row[4], row[5]],
    sig: row[6].toString('base64'),
    thumb: row[7] ? row[7].toString('base64') : null,
    kw,
  };
}
