import Database from 'better-sqlite3';
import { join } from 'node:path';
import { health } from '../helpers/server.ts';

export function dbFile(dataDir: string): string {
  return join(dataDir, 'haarseek.db');
}

/** A read-only look at a haarseek file (the writer's or a replica's), closed after `look`. */
export function inspect<T>(dataDir: string, look: (db: Database.Database) => T): T {
  const db = new Database(dbFile(dataDir), { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  try {
    return look(db);
  } finally {
    db.close();
  }
}

export function lastSeq(dataDir: string): number {
  return inspect(dataDir, (db) => db.prepare('SELECT coalesce(max(seq), 0) FROM changes').pluck().get() as number);
}

/** The change log as `seq op db image` lines from `from` on (the replica must hold the writer's, number for number). */
export function changeLines(dataDir: string, from: number): string[] {
  return inspect(dataDir, (db) => (db.prepare('SELECT seq, op, db_id, image_id FROM changes WHERE seq >= ? ORDER BY seq').raw().all(from) as unknown[][]).map((r) => r.join(' ')));
}

/** Every image row (signature and thumbnail included) and keyword, as one comparable text. */
export function contents(dataDir: string): string {
  return inspect(dataDir, (db) => {
    const images = db.prepare("SELECT db_id, image_id, width, height, avgl_y, hex(sig), hex(coalesce(thumb, '')) FROM images ORDER BY db_id, image_id").raw().all();
    const keywords = db.prepare('SELECT * FROM keywords ORDER BY 1, 2, 3').raw().all();
    const spaces = db.prepare('SELECT db_id FROM spaces ORDER BY 1').raw().all();
    return JSON.stringify({ spaces, images, keywords });
  });
}

export async function replicaHealth(port: number): Promise<Record<string, any>> {
  return health(port);
}
