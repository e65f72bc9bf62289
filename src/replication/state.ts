import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';

/**
 * Replication's own key/value table, inside the database file so that it travels with
 * a snapshot and changes in the same transaction as the rows it describes:
 * - db_id: the database's identity, made once by the writer; a snapshot carries it, so
 *   a replica (and the writer) can tell a stream of another database;
 * - applied_seq, stream_seq (replica): the last change applied and the stream
 *   sequence it came in, written with the change itself, so a replica killed mid-apply
 *   resumes exactly after the last committed one.
 * Readers never look at it; a database without it is simply not replicated.
 */
const DDL = 'CREATE TABLE IF NOT EXISTS replication (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID';

export interface ReplicaPosition {
  dbId: string;
  appliedSeq: number;
  streamSeq: number;
}

export function hasReplicationTable(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'replication'").get() !== undefined;
}

function read(db: Database.Database): Map<string, string> {
  if (!hasReplicationTable(db)) return new Map();
  return new Map(db.prepare('SELECT key, value FROM replication').raw().all() as Array<[string, string]>);
}

/** The database's identity, made and stored on first use (writer). */
export function ensureDatabaseId(db: Database.Database): string {
  db.exec(DDL);
  db.prepare("INSERT OR IGNORE INTO replication (key, value) VALUES ('db_id', ?)").run(randomUUID());
  return db.prepare("SELECT value FROM replication WHERE key = 'db_id'").pluck().get() as string;
}

export function databaseId(db: Database.Database): string | null {
  return read(db).get('db_id') ?? null;
}

/** The replica's position, or null when the file is not (yet) a replica's. */
export function replicaPosition(db: Database.Database): ReplicaPosition | null {
  const kv = read(db);
  const dbId = kv.get('db_id');
  const applied = kv.get('applied_seq');
  if (!dbId || applied === undefined) return null;
  return { dbId, appliedSeq: Number(applied), streamSeq: Number(kv.get('stream_seq') ?? 0) };
}

/** Inside the caller's transaction. */
export function writeReplicaPosition(db: Database.Database, pos: ReplicaPosition): void {
  db.exec(DDL);
  const put = db.prepare('INSERT OR REPLACE INTO replication (key, value) VALUES (?, ?)');
  put.run('db_id', pos.dbId);
  put.run('applied_seq', String(pos.appliedSeq));
  put.run('stream_seq', String(pos.streamSeq));
}
