import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { FileError } from '../errors.ts';
import { checkSchema, createSchema, upgradeSchema } from './schema.ts';

/**
 * Rollback-journal mode, not WAL: every commit rewrites the main file's header, whose
 * change counter (bytes 24..27) then tells readers exactly when to refresh. In WAL mode
 * a commit leaves the main file untouched until a checkpoint.
 */
export function openWritable(path: string): Database.Database {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.pragma('journal_mode = DELETE');
    db.pragma('synchronous = FULL');
    // Readers hold shared locks while they refresh; a commit waits for them.
    db.pragma('busy_timeout = 30000');
    const state = checkSchema(db, path);
    if (state === 'empty') createSchema(db);
    if (state === 'old') upgradeSchema(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

export function openReadOnly(path: string, busyTimeoutMs: number): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new FileError(`cannot open ${path} read-only: ${(err as Error).message}`);
  }
  try {
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    if (checkSchema(db, path) === 'empty') throw new FileError(`${path} is not initialised yet (no writer has opened it)`);
    return db;
  } catch (err) {
    db.close();
    const code = (err as { code?: string }).code ?? '';
    if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
      throw new FileError(`${path} is not a haarseek database (not a SQLite file, or a damaged one)`);
    }
    throw err;
  }
}
