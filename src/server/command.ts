import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Ranking } from '../service/context.ts';
import type { RunningServer } from './app.ts';
import { DEFAULTS, type ServerConfig } from './config.ts';
import { LogRing, createLogger } from './log.ts';
import { ReplicationError, WriterLockedError } from '../errors.ts';
import { writeKeyOrExit } from './write-key.ts';

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface ServeOptions {
  role: 'writer' | 'reader';
  data: string;
  host: string;
  port?: number;
  writerUrl?: string;
  forward: boolean;
  allowDir: string[];
  logLevel: string;
  maxBodyBytes: number;
  maxPixels: number;
  maxDecodes: number;
  maxResults: number;
  requestTimeoutMs: number;
  refreshRetryMs: number;
  writeKey?: string;
  maxInFlight: number;
  maxSpaces: number;
  parseWorkers: number;
  imageUrlTemplate?: string;
  iqdbSpace: number;
  ranking?: Ranking;
  segmentDeltaMax: number;
  nats: string[];
  natsStream: string;
  natsReplicas: number;
  natsSnapshotIntervalS: number;
  natsSnapshotEvery: number;
  follower?: boolean;
}

function rankingFromEnvironment(): Ranking {
  const named = process.env.HAARSEEK_RANKING;
  if (named === undefined || named === '') return DEFAULTS.ranking;
  if (named === 'verified' || named === 'imgseek') return named;
  process.stderr.write(`haarseek: HAARSEEK_RANKING must be verified or imgseek, not ${JSON.stringify(named)}\n`);
  process.exit(2);
}

/** How often a supervised process tells its supervisor that its event loop turns. */
const HEARTBEAT_MS = 1000;

/** `haarseek serve`: one writer or one reader process. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run one haarseek process: the writer (owns the database) or a reader (serves queries from memory)')
    .addOption(new Option('--role <role>', 'writer or reader').choices(['writer', 'reader']).default('writer'))
    .option('--data <dir>', 'data directory holding haarseek.db', DEFAULTS.dataDir)
    .option('--host <host>', 'address to listen on', DEFAULTS.host)
    .option('--port <port>', `port to listen on (default: ${DEFAULTS.writerPort} for the writer, ${DEFAULTS.readerBasePort} for a reader)`, parsePositiveInt)
    .option('--writer-url <url>', 'reader: the writer\'s XML-RPC URL, where write calls are forwarded')
    .option('--no-forward', 'reader: refuse write calls with a fault instead of forwarding them')
    .option('--allow-dir <dir>', 'directory that path arguments (addImg, addDir, saveDbAs, loadDb...) may use; repeatable (default: the data directory)', collect, [])
    .option('--log-level <level>', 'pino log level', DEFAULTS.logLevel)
    .option('--max-body-bytes <n>', 'largest request body (and image) accepted', parsePositiveInt, DEFAULTS.maxBodyBytes)
    .option('--max-pixels <n>', 'largest decoded image (width x height), against decompression bombs', parsePositiveInt, DEFAULTS.maxPixels)
    .option('--max-decodes <n>', 'image decodes running at once', parsePositiveInt, DEFAULTS.maxConcurrentDecodes)
    .option('--max-results <n>', 'largest numres accepted', parsePositiveInt, DEFAULTS.maxResults)
    .option('--request-timeout-ms <n>', 'time limit for one request', parsePositiveInt, DEFAULTS.requestTimeoutMs)
    .option('--refresh-retry-ms <n>', 'reader: how long a refresh retries before answering from the last snapshot', parsePositiveInt, DEFAULTS.refreshRetryMs)
    .option('--write-key <key>', 'key that write and admin calls must carry (default: HAARSEEK_WRITE_KEY, else DATA/write.key, generated when missing)')
    .option('--max-in-flight <n>', 'requests held at once; past it a request is answered busy at once', parsePositiveInt, DEFAULTS.maxInFlight)
    .option('--max-spaces <n>', 'database spaces this server holds at most', parsePositiveInt, DEFAULTS.maxSpaces)
    .option('--parse-workers <n>', 'threads parsing large XML-RPC bodies off the event loop (0: parse inline)', parsePositiveInt, DEFAULTS.parseWorkers)
    .option('--image-url-template <url>', 'where the search page loads an image by id for its thumbnails; {id} is replaced, e.g. https://img.example/{id}.jpg (default: no thumbnails)')
    .addOption(new Option('--ranking <ranking>', 'how image queries are ranked when a call names none: verified (query variants and a thumbnail check) or imgseek (exactly imgSeek\'s scores and order); default HAARSEEK_RANKING, else verified').choices(['verified', 'imgseek']))
    .option('--segment-delta-max <n>', 'writer: write a new index segment set (shared by the readers through the page cache) once this many changes came after the current one; a smaller database is loaded from SQLite', parsePositiveInt, DEFAULTS.segmentDeltaMax)
    .option('--iqdb-space <n>', 'database space of the iqdb-compatible routes (POST /images/:id, POST /query, GET /status)', parsePositiveInt, DEFAULTS.iqdbSpace)
    .option('--nats <url>', 'writer: publish every committed change to this NATS JetStream cluster for replicas on other hosts; repeatable (one URL per node)', collect, [])
    .option('--nats-stream <name>', 'writer: the name of the stream and snapshot bucket (replicas use the same)', 'haarseek')
    .option('--nats-replicas <n>', 'writer: JetStream replicas of the stream and the bucket (at most the NATS cluster size)', parsePositiveInt, 3)
    .option('--nats-snapshot-interval-s <n>', 'writer: store a snapshot for new replicas at least this often while changes come in', parsePositiveInt, 600)
    .option('--nats-snapshot-every <n>', 'writer: ...and after this many changes', parsePositiveInt, 100_000)
    .option('--follower', 'reader on a host fed by `haarseek replica` (no writer here): write calls are forwarded to --writer-url when given, else refused')
    .action(async (opts: ServeOptions) => {
      const port = opts.port ?? (opts.role === 'writer' ? DEFAULTS.writerPort : DEFAULTS.readerBasePort);
      const config: ServerConfig = {
        role: opts.role,
        dataDir: resolve(opts.data),
        host: opts.host,
        port,
        writerUrl: opts.writerUrl ?? (opts.role === 'reader' && !opts.follower ? `http://${DEFAULTS.host}:${DEFAULTS.writerPort}/RPC` : undefined),
        forwardWrites: opts.forward,
        allowedDirs: opts.allowDir.length > 0 ? opts.allowDir : [opts.data],
        logLevel: opts.logLevel,
        maxBodyBytes: opts.maxBodyBytes,
        maxPixels: opts.maxPixels,
        maxConcurrentDecodes: Math.max(1, opts.maxDecodes),
        maxResults: opts.maxResults,
        requestTimeoutMs: opts.requestTimeoutMs,
        refreshRetryMs: opts.refreshRetryMs,
        writeKey: '',
        maxInFlight: Math.max(1, opts.maxInFlight),
        maxSpaces: opts.maxSpaces,
        parseWorkers: opts.parseWorkers,
        imageUrlTemplate: opts.imageUrlTemplate || null,
        iqdbSpace: opts.iqdbSpace,
        ranking: opts.ranking ?? rankingFromEnvironment(),
        segmentDeltaMax: Math.max(1, opts.segmentDeltaMax),
        nats: opts.nats.length > 0 ? { servers: opts.nats, name: opts.natsStream, replicas: Math.max(1, opts.natsReplicas), snapshotIntervalMs: Math.max(1, opts.natsSnapshotIntervalS) * 1000, snapshotEveryChanges: Math.max(1, opts.natsSnapshotEvery) } : undefined,
        follower: opts.follower === true,
      };
      mkdirSync(config.dataDir, { recursive: true });
      config.writeKey = writeKeyOrExit(config.dataDir, opts.writeKey ?? process.env.HAARSEEK_WRITE_KEY, 'haarseek').key;
      const ring = new LogRing();
      const log = await createLogger(config.logLevel, { role: config.role, port }, ring);
      let stopping = false;
      let server: RunningServer | undefined;
      const stop = async (reason: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ reason }, 'stopping: finishing in-flight requests');
        const force = setTimeout(() => {
          log.warn('in-flight requests did not finish in time; exiting');
          process.exit(1);
        }, 10_000);
        force.unref();
        await server?.close();
        log.info({ reason }, 'stopped');
        process.exit(0);
      };
      process.on('SIGTERM', () => void stop('SIGTERM'));
      process.on('SIGINT', () => void stop('SIGINT'));
      const supervisor = Number(process.env.HAARSEEK_SUPERVISED);
      if (supervisor > 0) {
        // Started by a cluster supervisor: never outlive it (it may have been killed -9).
        setInterval(() => {
          if (process.ppid !== supervisor) void stop('supervisor gone');
        }, 1000).unref();
      }
      if (process.send) {
        // Liveness: a beat per turn of the event loop (at most one a second), so the
        // supervisor can tell a busy process, which beats, from a stuck one.
        setInterval(() => process.send?.({ beat: Date.now() }), HEARTBEAT_MS).unref();
        process.on('disconnect', () => void stop('supervisor gone'));
      }
      try {
        // Loaded here, not at the top: `haarseek --help` and the other commands never load the server.
        const { startServer } = await import('./app.ts');
        server = await startServer(config, log, ring, () => void stop('shutdownServer'));
      } catch (err) {
        if (err instanceof WriterLockedError || err instanceof ReplicationError) {
          process.stderr.write(`haarseek: ${err.message}\n`);
          process.exit(2);
        }
        log.fatal({ err }, 'could not start');
        process.stderr.write(`haarseek: could not start: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}
