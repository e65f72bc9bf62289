import { createReadStream, createWriteStream, fsyncSync, openSync, closeSync, rmSync, statSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import Database from 'better-sqlite3';
import { type ObjectInfo, type ObjectStore, StorageType } from 'nats';
import type { JetStreamClient } from 'nats';
import { ReplicationError } from '../errors.ts';
import { checkSchema } from '../store/schema.ts';
import { databaseId } from './state.ts';
import { type SnapshotDescription, snapshotName } from './protocol.ts';

/** Snapshots kept in the bucket: the newest, and the one before it for a replica still downloading it. */
const KEEP = 2;

export async function openSnapshotStore(js: JetStreamClient, bucket: string, replicas?: number): Promise<ObjectStore> {
  return js.views.os(bucket, replicas === undefined ? undefined : { replicas, storage: StorageType.File });
}

/** The bucket's snapshots of database dbId (all when dbId is undefined), newest first. */
export async function listSnapshots(store: ObjectStore, dbId?: string): Promise<Array<{ info: ObjectInfo; desc: SnapshotDescription }>> {
  const found: Array<{ info: ObjectInfo; desc: SnapshotDescription }> = [];
  for (const info of await store.list()) {
    if (info.deleted || !info.name.startsWith('snapshot-')) continue;
    let desc: SnapshotDescription;
    try {
      desc = JSON.parse(info.description ?? '') as SnapshotDescription;
    } catch {
      desc = { db: '?', seq: Number(info.name.slice('snapshot-'.length)) || 0, streamStart: 1, bytes: info.size, createdAt: '' };
    }
    if (dbId === undefined || desc.db === dbId) found.push({ info, desc });
  }
  return found.sort((a, b) => b.desc.seq - a.desc.seq);
}

/** Uploads a consistent copy made by the writer (see Publisher) and drops older snapshots. */
export async function uploadSnapshot(store: ObjectStore, file: string, desc: SnapshotDescription): Promise<ObjectInfo> {
  const body = Readable.toWeb(createReadStream(file, { highWaterMark: 1 << 20 })) as unknown as ReadableStream<Uint8Array>;
  const info = await store.put({ name: snapshotName(desc.seq), description: JSON.stringify(desc), options: { max_chunk_size: 512 * 1024 } }, body, { timeout: 60_000 });
  const all = await listSnapshots(store);
  for (const old of all.filter((s) => s.desc.db === desc.db).slice(KEEP)) await store.delete(old.info.name);
  for (const foreign of all.filter((s) => s.desc.db !== desc.db)) await store.delete(foreign.info.name);
  return info;
}

/**
 * Downloads a snapshot to `file` and checks it before anyone uses it: a haarseek
 * database, intact (quick_check), of the expected database, at the sequence its
 * description names. A failure is a ReplicationError naming the snapshot.
 */
export async function downloadSnapshot(store: ObjectStore, name: string, file: string, expectDb: string | null): Promise<{ seq: number; dbId: string }> {
  rmSync(file, { force: true });
  const result = await store.get(name);
  if (!result) throw new ReplicationError(`snapshot ${name} vanished from the bucket while it was being fetched`);
  let desc: SnapshotDescription;
  try {
    desc = JSON.parse(result.info.description ?? '') as SnapshotDescription;
  } catch {
    throw new ReplicationError(`snapshot ${name} is damaged: its description is not haarseek's`);
  }
  const out = createWriteStream(file);
  await pipeline(Readable.fromWeb(result.data as unknown as WebReadableStream<Uint8Array>), out as Writable);
  const streamError = await result.error;
  if (streamError) throw new ReplicationError(`snapshot ${name} could not be read whole: ${streamError.message}`);
  const fd = openSync(file, 'r+');
  fsyncSync(fd);
  closeSync(fd);
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: true });
    checkSchema(db, name);
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(String(check));
    const dbId = databaseId(db);
    if (!dbId) throw new Error('it carries no database identity');
    if (expectDb && dbId !== expectDb) throw new ReplicationError(`snapshot ${name} is of database ${dbId}, this replica follows database ${expectDb}`);
    const seq = db.prepare('SELECT coalesce(max(seq), 0) FROM changes').pluck().get() as number;
    if (seq !== desc.seq) throw new Error(`it ends at change ${seq}, its description says ${desc.seq}`);
    return { seq, dbId };
  } catch (err) {
    db?.close();
    db = undefined;
    const size = statSafe(file);
    rmSync(file, { force: true });
    if (err instanceof ReplicationError) throw err;
    throw new ReplicationError(`snapshot ${name} is damaged (${size}): ${(err as Error).message}`);
  } finally {
    db?.close();
  }
}

function statSafe(file: string): string {
  try {
    return `${statSync(file).size} bytes`;
  } catch {
    return 'removed';
  }
}
