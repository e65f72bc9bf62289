import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import {
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  type ObjectStore,
  StorageType,
  nanos,
} from 'nats';
import type { Logger } from 'pino';
import { ReplicationError } from '../errors.ts';
import type { WriterStore } from '../store/writer-store.ts';
import { ChangeReader } from './change-reader.ts';
import { connectWithRetry, probeNats } from './connect.ts';
import { type ChangeMessage, HEADER_DB, HEADER_SEQ, type ReplicationNames, messageHeaders, messageId, replicationNames } from './protocol.ts';
import { listSnapshots, openSnapshotStore, uploadSnapshot } from './snapshots.ts';
import { ensureDatabaseId } from './state.ts';

export interface PublisherOptions {
  servers: string[];
  /** --nats-stream: names the stream, its subject and the snapshot bucket. */
  name: string;
  /** JetStream replicas of the stream and the bucket (3 for a three-node NATS cluster). */
  replicas: number;
  /** A snapshot at least this often while changes come in. */
  snapshotIntervalMs: number;
  /** ...and after this many changes published since the last one. */
  snapshotEveryChanges: number;
  dbPath: string;
  dataDir: string;
  log: Logger;
}

/** Messages in flight at once: enough to cover a round trip to a replicated stream (~20 ms) at thousands of writes a second. */
const WINDOW = 512;
/** An ack normally takes milliseconds; past this the pipeline is drained and resynced with the stream. */
const PUBLISH_TIMEOUT_MS = 5000;
/** The stream keeps this much; a replica further behind installs a snapshot. */
const STREAM_MAX_BYTES = 1024 ** 3;

export type PublisherState = 'connecting' | 'publishing' | 'retrying' | 'refused' | 'closed';

/**
 * The writer's side of replication: publishes every committed change-log row to a
 * JetStream stream, in log order (see protocol.ts for how the order is enforced), and
 * stores snapshots in an Object Store. Runs beside the writer and never in its way: a
 * client's write commits and is answered whatever NATS does; the rows not yet in the
 * stream are held in the log (WriterStore.holdChanges) and sent when NATS is back.
 */
export class Publisher {
  state: PublisherState = 'connecting';
  /** The last change sequence the stream holds, and its stream sequence. */
  published = 0;
  streamSeq = 0;
  lastError: string | null = null;
  lastSnapshot: { seq: number; at: string; bytes: number; ms: number } | null = null;
  snapshots = 0;

  private readonly names: ReplicationNames;
  private readonly reader: ChangeReader;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private jsm: JetStreamManager | null = null;
  private store: ObjectStore | null = null;
  /** Change sequence last handed to the pipeline, and the stream sequence it should get. */
  private sent = 0;
  private predicted = 0;
  private inflight = 0;
  private pumping = false;
  private drained: (() => void) | null = null;
  private snapshotting = false;
  /** Set when a snapshot is asked for during another: the log's end then, which the next one must reach. */
  private snapshotAgain = 0;
  private publishedAtSnapshot = 0;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly releases: Array<() => void> = [];
  private readonly encoder = new TextEncoder();

  private constructor(private readonly writer: WriterStore, readonly dbId: string, private readonly o: PublisherOptions) {
    this.names = replicationNames(o.name);
    this.reader = new ChangeReader(o.dbPath);
    // Until the stream's position is known, nothing may be trimmed.
    this.releases.push(writer.holdChanges(() => this.published));
    this.releases.push(writer.onCommit(() => this.pump()));
  }

  /**
   * Refuses at once a URL that answers but is not NATS (a wrong flag); NATS being down
   * is not an error: the writer starts and publishes once it is back.
   */
  static async start(writer: WriterStore, o: PublisherOptions): Promise<Publisher> {
    replicationNames(o.name);
    for (const url of o.servers) {
      const probe = await probeNats(url);
      if (probe.kind === 'not-nats') throw new ReplicationError(`--nats ${url} is not a NATS server: ${probe.reason}`);
    }
    const conn = new Database(o.dbPath);
    let dbId: string;
    try {
      conn.pragma('busy_timeout = 30000');
      dbId = ensureDatabaseId(conn);
    } finally {
      conn.close();
    }
    const publisher = new Publisher(writer, dbId, o);
    void publisher.run();
    publisher.timers.push(setInterval(() => publisher.pump(), 1000));
    publisher.timers.push(setInterval(() => {
      if (publisher.reader.bounds().last > (publisher.lastSnapshot?.seq ?? 0)) void publisher.snapshot('interval');
    }, o.snapshotIntervalMs));
    for (const t of publisher.timers) t.unref();
    return publisher;
  }

  status(): Record<string, unknown> {
    const last = this.lastSeqSafe();
    return {
      state: this.state,
      stream: this.names.stream,
      database: this.dbId,
      publishedSeq: this.published,
      streamSeq: this.streamSeq,
      logSeq: last,
      backlog: Math.max(0, last - this.published),
      lastError: this.lastError,
      lastSnapshot: this.lastSnapshot,
    };
  }

  lastSeqSafe(): number {
    try {
      return this.reader.bounds().last;
    } catch {
      return this.published;
    }
  }

  async close(): Promise<void> {
    this.state = 'closed';
    for (const t of this.timers) clearInterval(t);
    for (const release of this.releases) release();
    await this.nc?.drain().catch(() => undefined);
    this.reader.close();
  }

  private async run(): Promise<void> {
    let delay = 250;
    while (this.state !== 'closed' && this.state !== 'refused') {
      try {
        if (!this.nc) {
          this.nc = await connectWithRetry(this.o.servers, `haarseek-writer ${this.dbId}`, this.o.log, (reason) => {
            this.lastError = reason;
          });
          this.o.log.info({ server: this.nc.getServer() }, 'connected to NATS');
          this.js = this.nc.jetstream({ timeout: 10_000 });
          void this.watchConnection(this.nc);
        }
        this.jsm ??= await this.nc.jetstreamManager({ timeout: 10_000 });
        await this.setUp();
        await this.syncWithStream();
        delay = 250;
        const broken = new Promise<void>((resolve) => (this.drained = resolve));
        this.state = 'publishing';
        this.lastError = null;
        this.o.log.info({ stream: this.names.stream, publishedSeq: this.published, logSeq: this.reader.bounds().last }, 'publishing the change log to NATS');
        this.pump();
        await broken;
      } catch (err) {
        if (err instanceof ReplicationError) {
          this.state = 'refused';
          this.lastError = err.message;
          this.o.log.error({ err: err.message }, 'replication refused: the writer keeps serving but publishes nothing');
          return;
        }
        this.state = 'retrying';
        this.lastError = (err as Error).message;
        this.o.log.warn({ err: this.lastError, retryInMs: delay }, 'NATS is not usable yet; writes commit locally and are published once it is');
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }

  /** A lost connection fails the pipeline at once rather than at each publish's timeout. */
  private async watchConnection(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') this.fail(new Error(`disconnected from NATS ${String(s.data)}`));
      if (s.type === 'reconnect') this.o.log.info({ server: s.data }, 'reconnected to NATS');
    }
  }

  /** The stream and the bucket, made when missing (idempotent). */
  private async setUp(): Promise<void> {
    const { stream, subject, bucket } = this.names;
    try {
      await this.jsm!.streams.info(stream);
    } catch (err) {
      if ((err as Error).message !== 'stream not found') throw err;
      await this.jsm!.streams.add({
        name: stream,
        subjects: [subject],
        num_replicas: this.o.replicas,
        storage: StorageType.File,
        max_bytes: STREAM_MAX_BYTES,
        discard: DiscardPolicy.Old,
        duplicate_window: nanos(120_000),
      });
      this.o.log.info({ stream, replicas: this.o.replicas }, 'created the JetStream stream');
    }
    this.store ??= await openSnapshotStore(this.js!, bucket, this.o.replicas);
    if (!this.lastSnapshot) {
      const [newest] = await listSnapshots(this.store, this.dbId);
      if (newest) this.lastSnapshot = { seq: newest.desc.seq, at: newest.desc.createdAt, bytes: newest.desc.bytes, ms: 0 };
      else void this.snapshot('the bucket has none of this database');
    }
  }

  /** Where the stream ends decides where publishing resumes. */
  private async syncWithStream(): Promise<void> {
    const { stream, subject } = this.names;
    let last: { db: string; seq: number; streamSeq: number } | null = null;
    try {
      const m = await this.jsm!.streams.getMessage(stream, { last_by_subj: subject });
      last = { db: m.header.get(HEADER_DB), seq: Number(m.header.get(HEADER_SEQ)), streamSeq: m.seq };
    } catch (err) {
      if (!/no message found/i.test((err as Error).message)) throw err;
    }
    const { first, last: logLast } = this.reader.bounds();
    if (last) {
      if (last.db !== this.dbId) {
        throw new ReplicationError(`stream ${stream} carries the changes of another database (${last.db}; this one is ${this.dbId}): use another --nats-stream or delete that stream`);
      }
      if (last.seq > logLast) {
        throw new ReplicationError(`stream ${stream} holds change ${last.seq} but this database's log ends at ${logLast} (restored from an older copy?): use another --nats-stream or delete that stream`);
      }
      this.published = last.seq;
      this.streamSeq = last.streamSeq;
    } else {
      this.published = 0;
      this.streamSeq = (await this.jsm!.streams.info(stream)).state.last_seq;
    }
    if (first !== null && this.published < first - 1) {
      // The log no longer has rows the stream lacks (it ran without --nats): replicas
      // will see a gap and wait for a snapshot that covers it.
      this.o.log.warn({ streamHasUpTo: this.published, logStartsAt: first }, 'the stream lacks changes the log no longer holds; storing a snapshot that covers them');
      void this.snapshot('gap in the stream');
      this.published = first - 1;
    }
    this.sent = this.published;
    this.predicted = this.streamSeq;
  }

  private pump(): void {
    if (this.state !== 'publishing' || this.pumping) return;
    this.pumping = true;
    try {
      while (this.inflight < WINDOW) {
        const batch = this.reader.messagesAfter(this.sent, Math.min(256, WINDOW - this.inflight));
        if (batch.length === 0) break;
        for (const msg of batch) this.send(msg);
      }
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.pumping = false;
    }
  }

  private send(msg: ChangeMessage): void {
    const expect = this.predicted++;
    this.sent = msg.seq;
    this.inflight++;
    if ('snapshot' in msg) void this.snapshot(`space ${msg.db} is too large for a message`);
    const options = { msgID: messageId(this.dbId, msg.seq), headers: messageHeaders(this.dbId, msg.seq), timeout: PUBLISH_TIMEOUT_MS, expect: expect > 0 ? { lastSequence: expect } : undefined };
    this.js!.publish(this.names.subject, this.encoder.encode(JSON.stringify(msg)), options).then(
      (ack) => {
        this.inflight--;
        if (this.state === 'publishing') {
          this.published = Math.max(this.published, msg.seq);
          this.streamSeq = Math.max(this.streamSeq, ack.seq);
          if (this.published - this.publishedAtSnapshot >= this.o.snapshotEveryChanges) void this.snapshot('changes since the last snapshot');
          this.pump();
        } else if (this.inflight === 0) this.drained?.();
      },
      (err: Error) => {
        this.inflight--;
        this.fail(err);
      },
    );
  }

  /** A failed publish: let the pipeline drain (every later message fails too), then resync. */
  private fail(err: Error): void {
    if (this.state === 'publishing') {
      this.state = 'retrying';
      this.lastError = err.message;
      this.o.log.warn({ err: err.message, publishedSeq: this.published }, 'publishing to NATS failed; writes go on committing locally and will be sent when NATS answers');
    }
    if (this.inflight === 0) this.drained?.();
  }

  /**
   * Stores a consistent copy in the bucket: SQLite's online backup on the writer's own
   * connection (a few MB per turn of the event loop; writes meanwhile are carried into
   * the copy, so it is consistent as of its end and no write waits for it, unlike
   * VACUUM INTO, which holds a read lock that commits must wait behind).
   */
  async snapshot(reason: string): Promise<void> {
    if (this.snapshotting) {
      this.snapshotAgain = Math.max(this.snapshotAgain, this.lastSeqSafe());
      return;
    }
    if (!this.store) return;
    this.snapshotting = true;
    const tmp = join(this.o.dataDir, `replication-snapshot.${process.pid}.db`);
    try {
      do {
        this.snapshotAgain = 0;
        const started = Date.now();
        rmSync(tmp, { force: true });
        await this.writer.backupTo(tmp);
        const at = { published: this.published, streamSeq: this.streamSeq };
        const copy = new Database(tmp, { readonly: true });
        const seq = copy.prepare('SELECT coalesce(max(seq), 0) FROM changes').pluck().get() as number;
        copy.close();
        // The first message after seq: at or after the stream position known at the copy's end.
        const streamStart = at.published <= seq ? at.streamSeq + 1 : Math.max(1, at.streamSeq - (at.published - seq) + 1);
        const bytes = statSync(tmp).size;
        this.publishedAtSnapshot = Math.max(this.publishedAtSnapshot, seq);
        await uploadSnapshot(this.store, tmp, { db: this.dbId, seq, streamStart, bytes, createdAt: new Date().toISOString() });
        this.lastSnapshot = { seq, at: new Date().toISOString(), bytes, ms: Date.now() - started };
        this.snapshots++;
        this.o.log.info({ reason, seq, bytes, durationMs: this.lastSnapshot.ms }, 'stored a snapshot in NATS');
      } while (this.snapshotAgain > (this.lastSnapshot?.seq ?? 0) && this.state !== 'closed');
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message, reason }, 'storing a snapshot failed; the next one will be tried later');
    } finally {
      rmSync(tmp, { force: true });
      this.snapshotting = false;
    }
  }
}
