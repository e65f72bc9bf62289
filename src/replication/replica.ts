import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import { AckPolicy, type ConsumerMessages, DeliverPolicy, type JetStreamClient, type JetStreamManager, type NatsConnection, type ObjectStore } from 'nats';
import type { Logger } from 'pino';
import { ReplicationError } from '../errors.ts';
import { openWritable } from '../store/open.ts';
import { connectWithRetry } from './connect.ts';
import { nanos } from 'nats';
import { type ChangeMessage, HEADER_DB, HEADER_SENT, HEADER_SEQ, type ImagePayload, type ReplicationNames, replicationNames } from './protocol.ts';
import { type ReplicaStatus, writeReplicaStatus } from './replica-status.ts';
import { downloadSnapshot, listSnapshots } from './snapshots.ts';
import { type ReplicaPosition, replicaPosition, writeReplicaPosition } from './state.ts';

export interface ReplicaOptions {
  servers: string[];
  name: string;
  dataDir: string;
  dbPath: string;
  log: Logger;
  /** Called per applied change with the time from the writer sending it to its commit here. */
  observeDelay?: (ms: number) => void;
  /** Called after each committed batch and after a snapshot is installed. */
  onApplied?: () => void;
  /** Called before a snapshot replaces the local file (what was derived from the old one goes). */
  onReplaced?: () => void;
}

/** Changes applied in one transaction at most (one fsync for a burst, as a bulk add sends). */
const BATCH = 512;
/** Change-log rows kept locally for the host's readers, as the writer keeps them. */
const LOCAL_LOG_KEEP = 200_000;
const WATCHDOG_MS = 2000;
const STUCK_MS = 5000;
/** Behind by changes for this long without applying any: stale. */
const BEHIND_STALE_MS = 10_000;

type Stop = { kind: 'gap'; seq: number } | { kind: 'snapshot'; seq: number };

/**
 * A host without a writer keeps a local haarseek database equal to the writer's: it
 * installs the newest snapshot from the bucket, then applies the stream's changes in
 * order, each batch in one transaction with its position, so a kill -9 resumes exactly
 * after the last committed change. The file is an ordinary haarseek database whose
 * change log has the writer's sequence numbers, so the host's readers replay it as
 * they would the writer's.
 */
export class Replica {
  state = 'starting';
  connected = false;
  position: ReplicaPosition | null = null;
  pending = 0;
  lastAppliedAt = 0;
  lastError: string | null = null;
  applied = 0;
  snapshotsInstalled = 0;
  lastBootstrapMs: number | null = null;

  private readonly names: ReplicationNames;
  private db: Database.Database | null = null;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private jsm: JetStreamManager | null = null;
  private store: ObjectStore | null = null;
  private messages: ConsumerMessages | null = null;
  private closed = false;
  private statusWrittenAt = 0;
  private readonly statusTimer: NodeJS.Timeout;
  private readonly s: { [k: string]: Database.Statement } = {};

  constructor(private readonly o: ReplicaOptions) {
    this.names = replicationNames(o.name);
    this.statusTimer = setInterval(() => this.writeStatus(), 1000);
    this.statusTimer.unref();
  }

  get ready(): boolean {
    return this.position !== null;
  }

  /** The last change-log position in the local file (0 before there is one). */
  lastSeq(): number {
    return this.db ? (this.db.prepare('SELECT coalesce(max(seq), 0) FROM changes').pluck().get() as number) : 0;
  }

  imageCount(): number {
    return this.db ? (this.db.prepare('SELECT count(*) FROM images').pluck().get() as number) : 0;
  }

  get stale(): boolean {
    if (!this.connected || this.state !== 'following' || !this.position) return true;
    return this.pending > 0 && Date.now() - this.lastAppliedAt > BEHIND_STALE_MS;
  }

  status(): ReplicaStatus {
    return {
      pid: process.pid,
      state: this.state,
      connected: this.connected,
      stale: this.stale,
      database: this.position?.dbId ?? null,
      appliedSeq: this.position?.appliedSeq ?? 0,
      pendingChanges: this.pending,
      lastAppliedAt: this.lastAppliedAt ? new Date(this.lastAppliedAt).toISOString() : null,
      lastError: this.lastError,
      updatedAt: Date.now(),
    };
  }

  /** Opens the local copy (when there is one) so the host's readers can serve it at once. */
  openLocal(): void {
    if (!existsSync(this.o.dbPath)) return;
    this.useFile();
    if (!this.position) {
      const used = this.db!.prepare('SELECT (SELECT count(*) FROM spaces) + (SELECT count(*) FROM changes)').pluck().get() as number;
      if (used > 0) throw new ReplicationError(`${this.o.dbPath} holds a database that is not a replica (a writer's?); give the replica an empty --data directory`);
    }
    this.writeStatus();
  }

  /** Runs until close(); a ReplicationError ends it (the caller reports it in one line). */
  async run(): Promise<void> {
    this.state = 'connecting';
    this.writeStatus();
    this.nc = await connectWithRetry(this.o.servers, `haarseek-replica ${this.o.dataDir}`, this.o.log, (reason) => {
      this.lastError = `NATS unreachable: ${reason}`;
      this.writeStatus();
    });
    this.connected = true;
    this.lastError = null;
    this.o.log.info({ server: this.nc.getServer() }, 'connected to NATS');
    void this.watchConnection(this.nc);
    this.js = this.nc.jetstream({ timeout: 10_000 });
    let delay = 250;
    let need: number | null = this.position ? null : 0;
    while (!this.closed) {
      try {
        // JetStream may not answer yet (a NATS cluster just restarted): retried like the rest.
        this.jsm ??= await this.nc.jetstreamManager({ timeout: 10_000 });
        if (need !== null) {
          await this.bootstrap(need);
          need = null;
        }
        const stop = await this.follow();
        if (stop) need = stop.seq;
        delay = 250;
      } catch (err) {
        if (err instanceof ReplicationError) throw err;
        if (this.closed) return;
        this.lastError = (err as Error).message;
        this.o.log.warn({ err: this.lastError, retryInMs: delay }, 'replication interrupted; retrying');
        this.writeStatus();
        await sleep(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.state = 'closed';
    clearInterval(this.statusTimer);
    this.messages?.stop();
    await this.nc?.close().catch(() => undefined);
    this.db?.close();
    this.db = null;
  }

  private async watchConnection(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.connected = false;
        this.lastError = `disconnected from NATS ${String(s.data)}`;
        this.o.log.warn({ server: s.data }, 'disconnected from NATS; serving the last applied state (stale)');
      } else if (s.type === 'reconnect') {
        this.connected = true;
        this.lastError = null;
        this.o.log.info({ server: s.data }, 'reconnected to NATS');
      }
      this.writeStatus();
    }
  }

  private writeStatus(): void {
    this.statusWrittenAt = Date.now();
    try {
      writeReplicaStatus(this.o.dataDir, this.status());
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'could not write the replica status file');
    }
  }

  /** (Re)opens the local file and prepares what applying needs. */
  private useFile(): void {
    this.db?.close();
    const db = openWritable(this.o.dbPath);
    this.db = db;
    this.position = replicaPosition(db);
    Object.assign(this.s, {
      ensureSpace: db.prepare('INSERT OR IGNORE INTO spaces (db_id, created_at) VALUES (?, ?)'),
      putSpace: db.prepare('INSERT OR REPLACE INTO spaces (db_id, created_at) VALUES (?, ?)'),
      dropSpace: db.prepare('DELETE FROM spaces WHERE db_id = ?'),
      putImage: db.prepare('INSERT OR REPLACE INTO images (db_id, image_id, width, height, avgl_y, avgl_i, avgl_q, sig, thumb) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      dropImage: db.prepare('DELETE FROM images WHERE db_id = ? AND image_id = ?'),
      dropImageKeywords: db.prepare('DELETE FROM keywords WHERE db_id = ? AND image_id = ?'),
      dropSpaceImages: db.prepare('DELETE FROM images WHERE db_id = ?'),
      dropSpaceKeywords: db.prepare('DELETE FROM keywords WHERE db_id = ?'),
      putKeyword: db.prepare('INSERT OR IGNORE INTO keywords (db_id, image_id, keyword) VALUES (?, ?, ?)'),
      log: db.prepare('INSERT INTO changes (seq, op, db_id, image_id) VALUES (?, ?, ?, ?)'),
      trim: db.prepare('DELETE FROM changes WHERE seq <= ?'),
    });
  }

  private async snapshotStore(): Promise<ObjectStore> {
    if (this.store) return this.store;
    try {
      await this.jsm!.streams.info(`OBJ_${this.names.bucket}`);
    } catch (err) {
      if ((err as Error).message === 'stream not found') throw new Error(`no snapshot bucket ${this.names.bucket} yet: is the writer running with --nats and --nats-stream ${this.o.name}?`);
      throw err;
    }
    this.store = await this.js!.views.os(this.names.bucket);
    return this.store;
  }

  /** Installs the newest snapshot at or after change minSeq (waits for the writer to store one). */
  private async bootstrap(minSeq: number): Promise<void> {
    this.state = 'bootstrapping';
    this.writeStatus();
    const started = Date.now();
    let delay = 250;
    for (;;) {
      const store = await this.snapshotStore();
      const all = await listSnapshots(store);
      const expectDb = this.position?.dbId ?? null;
      const ours = expectDb ? all.filter((s) => s.desc.db === expectDb) : all;
      if (expectDb && all.length > 0 && ours.length === 0) {
        throw new ReplicationError(`the bucket ${this.names.bucket} holds snapshots of database ${all[0].desc.db}, but ${this.o.dbPath} is a replica of database ${expectDb}: use another --data directory or the right --nats-stream`);
      }
      const newest = ours[0];
      if (newest && newest.desc.seq >= minSeq) {
        this.o.log.info({ snapshot: newest.info.name, seq: newest.desc.seq, bytes: newest.info.size }, 'fetching a snapshot');
        const tmp = `${this.o.dbPath}.snapshot`;
        const got = await downloadSnapshot(this.js!, store, this.names.bucket, newest.info.name, tmp, expectDb);
        const stamp = openWritable(tmp);
        try {
          stamp.transaction(() => writeReplicaPosition(stamp, { dbId: got.dbId, appliedSeq: got.seq, streamSeq: Math.max(0, newest.desc.streamStart - 1) }))();
        } finally {
          stamp.close();
        }
        this.db?.close();
        this.db = null;
        this.o.onReplaced?.();
        // Our connection is closed after committed transactions only: no journal to roll back.
        rmSync(`${this.o.dbPath}-journal`, { force: true });
        renameSync(tmp, this.o.dbPath);
        const dir = openSync(dirname(this.o.dbPath), 'r');
        fsyncSync(dir);
        closeSync(dir);
        this.useFile();
        this.snapshotsInstalled++;
        this.lastBootstrapMs = Date.now() - started;
        this.lastAppliedAt = Date.now();
        this.o.log.info({ seq: got.seq, durationMs: this.lastBootstrapMs }, 'installed the snapshot; following the stream from there');
        this.o.onApplied?.();
        return;
      }
      const reason = newest ? `the newest snapshot is at change ${newest.desc.seq}, ${minSeq} is needed` : 'the bucket holds no snapshot yet';
      this.lastError = `waiting for the writer's snapshot: ${reason}`;
      if (delay === 250 || delay >= 5000) this.o.log.warn({ minSeq }, this.lastError);
      this.writeStatus();
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }

  /** Applies the stream from the position on; returns when a snapshot is needed. */
  private async follow(): Promise<Stop | null> {
    const pos = this.position!;
    let info;
    try {
      info = await this.jsm!.streams.info(this.names.stream);
    } catch (err) {
      if ((err as Error).message === 'stream not found') throw new Error(`no stream ${this.names.stream} yet: is the writer running with --nats and --nats-stream ${this.o.name}?`);
      throw err;
    }
    // A stream made again from scratch numbers from 1: start at its beginning; change sequences sort it out.
    const start = pos.streamSeq + 1 > info.state.last_seq + 1 ? info.state.first_seq : pos.streamSeq + 1;
    // A consumer of our own (the client's ordered consumer retried its own re-creation
    // out of sight after its server died): ephemeral, in memory, no acks, removed by the
    // server once unused; when it stops delivering, the watchdog below makes a new one.
    const created = await this.jsm!.consumers.add(this.names.stream, {
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, start),
      filter_subject: this.names.subject,
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: nanos(30_000),
    });
    const consumer = await this.js!.consumers.get(this.names.stream, created.name);
    const messages = await consumer.consume({ max_messages: 1024, idle_heartbeat: 2000 });
    this.messages = messages;
    this.state = 'following';
    this.pending = info.state.last_seq >= start ? info.state.last_seq - start + 1 : 0;
    this.writeStatus();
    this.o.log.info({ appliedSeq: pos.appliedSeq, fromStreamSeq: start }, 'following the stream');
    const decoder = new TextDecoder();
    let queued = pos.appliedSeq;
    let received = { streamSeq: start - 1, at: Date.now() };
    let batch: Array<{ msg: ChangeMessage; streamSeq: number; sent: number }> = [];
    let flushTimer: NodeJS.Immediate | null = null;
    const flush = () => {
      if (flushTimer) clearImmediate(flushTimer);
      flushTimer = null;
      if (batch.length === 0) return;
      const done = batch;
      batch = [];
      this.apply(done);
    };
    // The client's ordered consumer lives on one server; when that server dies, the
    // client may take long to notice, or never. The stream's own end says whether we
    // miss messages: past STUCK_MS without one, this consumer is dropped and a new one
    // made from our position.
    let stuck: () => void = () => undefined;
    const abandoned = new Promise<'stuck'>((resolve) => (stuck = () => resolve('stuck')));
    const watchdog = setInterval(() => {
      void this.jsm!.streams.info(this.names.stream).then(
        (now) => {
          this.pending = Math.max(0, now.state.last_seq - received.streamSeq);
          if (this.pending > 0 && Date.now() - received.at > STUCK_MS) {
            this.o.log.warn({ streamLastSeq: now.state.last_seq, receivedStreamSeq: received.streamSeq }, 'no message from the stream for too long while it has more; making the consumer again');
            stuck();
          }
        },
        () => undefined,
      );
    }, WATCHDOG_MS);
    const iterator = messages[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await Promise.race([iterator.next(), abandoned]);
        if (next === 'stuck') {
          flush();
          return null;
        }
        if (next.done) break;
        const m = next.value;
        const db = m.headers?.get(HEADER_DB);
        const seq = Number(m.headers?.get(HEADER_SEQ));
        if (db !== pos.dbId) {
          throw new ReplicationError(`stream ${this.names.stream} carries the changes of database ${db}, but ${this.o.dbPath} is a replica of database ${pos.dbId}: use another --data directory or the right --nats-stream`);
        }
        this.pending = m.info.pending;
        received = { streamSeq: m.seq, at: Date.now() };
        if (seq <= queued) continue;
        if (seq > queued + 1) {
          flush();
          this.o.log.warn({ appliedSeq: queued, next: seq }, 'the stream lacks changes this replica needs; fetching a snapshot');
          return { kind: 'gap', seq: seq - 1 };
        }
        const msg = JSON.parse(decoder.decode(m.data)) as ChangeMessage;
        if ('snapshot' in msg) {
          flush();
          this.o.log.info({ seq, space: msg.db }, 'a space changed too much for a message; fetching the snapshot that holds it');
          return { kind: 'snapshot', seq };
        }
        batch.push({ msg, streamSeq: m.seq, sent: Number(m.headers?.get(HEADER_SENT) ?? 0) });
        queued = seq;
        if (batch.length >= BATCH) flush();
        else flushTimer ??= setImmediate(flush);
      }
      flush();
      return null;
    } finally {
      clearInterval(watchdog);
      if (flushTimer) clearImmediate(flushTimer);
      messages.stop();
      this.messages = null;
      void this.jsm!.consumers.delete(this.names.stream, created.name).catch(() => undefined);
    }
  }

  private apply(batch: Array<{ msg: ChangeMessage; streamSeq: number; sent: number }>): void {
    const db = this.db!;
    const last = batch[batch.length - 1];
    const next: ReplicaPosition = { dbId: this.position!.dbId, appliedSeq: last.msg.seq, streamSeq: last.streamSeq };
    db.transaction(() => {
      for (const { msg } of batch) this.applyOne(msg);
      writeReplicaPosition(db, next);
      if (next.appliedSeq % 1000 < batch.length) this.s.trim.run(next.appliedSeq - LOCAL_LOG_KEEP);
    })();
    this.position = next;
    this.applied += batch.length;
    const now = Date.now();
    this.lastAppliedAt = now;
    // The host's readers see the new position within ~100 ms, not at the next second.
    if (now - this.statusWrittenAt > 100) this.writeStatus();
    if (this.o.observeDelay) for (const { sent } of batch) if (sent > 0) this.o.observeDelay(now - sent);
    this.o.onApplied?.();
  }

  private applyOne(msg: ChangeMessage): void {
    const s = this.s;
    if (msg.op === 'image') {
      if (msg.image) {
        s.ensureSpace.run(msg.db, Date.now());
        putImage(s, msg.db, msg.id, msg.image);
      } else {
        s.dropImage.run(msg.db, msg.id);
        s.dropImageKeywords.run(msg.db, msg.id);
      }
      s.log.run(msg.seq, 'image', msg.db, msg.id);
      return;
    }
    if ('snapshot' in msg) throw new Error('a snapshot marker cannot be applied');
    s.dropSpaceImages.run(msg.db);
    s.dropSpaceKeywords.run(msg.db);
    if (msg.space === null) s.dropSpace.run(msg.db);
    else {
      s.putSpace.run(msg.db, msg.space.createdAt);
      for (const image of msg.space.images) putImage(s, msg.db, image.id, image);
    }
    s.log.run(msg.seq, 'space', msg.db, null);
  }
}

function putImage(s: { [k: string]: Database.Statement }, db: number, id: number, im: ImagePayload): void {
  s.putImage.run(db, id, im.w, im.h, im.avgl[0], im.avgl[1], im.avgl[2], Buffer.from(im.sig, 'base64'), im.thumb === null ? null : Buffer.from(im.thumb, 'base64'));
  s.dropImageKeywords.run(db, id);
  for (const kw of im.kw) s.putKeyword.run(db, id, kw);
}
