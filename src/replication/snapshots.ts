import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, fsyncSync, openSync, closeSync, rmSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
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
export async function downloadSnapshot(js: JetStreamClient, store: ObjectStore, bucket: string, name: string, file: string, expectDb: string | null): Promise<{ seq: number; dbId: string }> {
  rmSync(file, { force: true });
  const info = await store.info(name);
  if (!info || info.deleted) throw new Error(`snapshot ${name} vanished from the bucket while it was being fetched`);
  let desc: SnapshotDescription;
  try {
    desc = JSON.parse(info.description ?? '') as SnapshotDescription;
  } catch {
    throw new ReplicationError(`snapshot ${name} is damaged: its description is not haarseek's`);
  }
  await fetchChunks(js, bucket, info, file);
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

/** A chunk must come within this long, or the fetch is abandoned and tried again. */
const CHUNK_STALL_MS = 30_000;

/**
 * The object's chunks through a pull consumer (a few chunks asked for at a time), into
 * file, checked against the object's SHA-256. Not ObjectStore.get: its push consumer
 * stalled for good halfway through a 29 MB snapshot on a loaded machine.
 */
async function fetchChunks(js: JetStreamClient, bucket: string, info: ObjectInfo, file: string): Promise<void> {
  const out = createWriteStream(file);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    if (info.chunks > 0) {
      const consumer = await js.consumers.get(`OBJ_${bucket}`, { filterSubjects: `$O.${bucket}.C.${info.nuid}` });
      const messages = await consumer.consume({ max_messages: 16 });
      const iterator = messages[Symbol.asyncIterator]();
      try {
        for (let received = 0; received < info.chunks; received++) {
          let timer: NodeJS.Timeout | undefined;
          const stalled = new Promise<'stalled'>((resolve) => (timer = setTimeout(() => resolve('stalled'), CHUNK_STALL_MS)));
          const next = await Promise.race([iterator.next(), stalled]);
          clearTimeout(timer);
          if (next === 'stalled') throw new Error(`no chunk of ${info.name} for ${CHUNK_STALL_MS / 1000} s (${received} of ${info.chunks}); trying again`);
          if (next.done) throw new Error(`the chunks of ${info.name} ended at ${received} of ${info.chunks}`);
          const data = next.value.data;
          hash.update(data);
          bytes += data.length;
          if (!out.write(data)) await once(out, 'drain');
        }
      } finally {
        messages.stop();
      }
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  const digest = hash.digest('base64url');
  if (bytes !== info.size || info.digest.replace(/^SHA-256=/, '').replace(/=+$/, '') !== digest) {
    rmSync(file, { force: true });
    throw new ReplicationError(`snapshot ${info.name} is damaged: ${bytes} bytes received of ${info.size}, digest ${digest} where the bucket says ${info.digest}`);
  }
}

function statSafe(file: string): string {
  try {
    return `${statSync(file).size} bytes`;
  } catch {
    return 'removed';
  }
}
