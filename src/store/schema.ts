import type Database from 'better-sqlite3';
import { FileError } from '../errors.ts';

/** 'HSK1' — marks a SQLite file as haarseek's so a foreign file is refused, not altered. */
export const APPLICATION_ID = 0x48534b31;
export const SCHEMA_VERSION = 2;


const DDL = `
CREATE TABLE IF NOT EXISTS spaces (
  db_id INTEGER PRIMARY KEY,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
  db_id INTEGER NOT NULL,
  image_id INTEGER NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  avgl_y REAL NOT NULL,
  avgl_i REAL NOT NULL,
  avgl_q REAL NOT NULL,
  sig BLOB NOT NULL,
  thumb BLOB,
  PRIMARY KEY (db_id, image_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keywords (
  db_id INTEGER NOT NULL,
  image_id INTEGER NOT NULL,
  keyword INTEGER NOT NULL,
  PRIMARY KEY (db_id, image_id, keyword)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS keywords_by_keyword ON keywords (db_id, keyword, image_id);
-- What readers replay: op 'image' = (db_id, image_id) changed, look it up;
-- op 'space' = reload the whole space db_id.
CREATE TABLE IF NOT EXISTS changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  op TEXT NOT NULL CHECK (op IN ('image', 'space')),
  db_id INTEGER NOT NULL,
  image_id INTEGER
);
`;

/**
 * Refuses files that are not haarseek databases of a version this code knows. 'old':
 * version 1 (no thumbnails), which the writer upgrades and readers can read.
 */
export function checkSchema(db: Database.Database, path: string): 'empty' | 'ok' | 'old' {
  const appId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  if (appId === 0 && version === 0) {
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number };
    if (tables.n > 0) throw new FileError(`${path} is a SQLite file of another application (not a haarseek database)`);
    return 'empty';
  }
  if (appId !== APPLICATION_ID) throw new FileError(`${path} is a SQLite file of another application (not a haarseek database)`);
  if (version > SCHEMA_VERSION) {
    throw new FileError(`${path} has haarseek schema version ${version}; this haarseek reads up to version ${SCHEMA_VERSION}: upgrade haarseek`);
  }
  if (version === 1) return 'old';
  if (version < SCHEMA_VERSION) throw new FileError(`${path} has an unknown older haarseek schema version ${version}`);
  return 'ok';
}

/** Version 1 -> 2: a thumbnail column (NULL for the images stored before it). */
export function upgradeSchema(db: Database.Database): void {
  db.transaction(() => {
    db.exec('ALTER TABLE images ADD COLUMN thumb BLOB');
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

export function createSchema(db: Database.Database): void {
  db.exec(DDL);
  db.pragma(`application_id = ${APPLICATION_ID}`);
  db.pragma(`user_version = ${SCHEMA_VERSION}`);
}
