import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ReplicationError, WriterLockedError } from '../errors.ts';
import { collect, parsePositiveInt } from '../server/command.ts';
import { DEFAULTS, databasePath, segmentDir } from '../server/config.ts';
import { LogRing, createLogger } from '../server/log.ts';

interface ReplicaOptions {
  nats: string[];
  natsStream: string;
  data: string;
  host: string;
  port: number;
  logLevel: string;
  segmentDeltaMax: number;
}

export const REPLICA_DEFAULT_PORT = 31126;

/** `haarseek replica`: keeps DATA/haarseek.db equal to a writer on another host, through NATS. */
export function registerReplicaCommand(program: Command): void {
  program
    .command('replica')
    .description('keep a local copy of a writer\'s database on another host, fed by NATS JetStream (the host\'s readers serve it)')
    .option('--nats <url>', 'a NATS server of the cluster the writer publishes to (required); repeatable', collect, [])
    .option('--nats-stream <name>', 'the name the writer publishes under (its --nats-stream)', 'haarseek')
    .option('--data <dir>', 'data directory of the local copy (haarseek.db)', DEFAULTS.dataDir)
    .option('--host <host>', 'address of /health and /metrics', DEFAULTS.host)
    .option('--port <port>', 'port of /health and /metrics', parsePositiveInt, REPLICA_DEFAULT_PORT)
    .option('--log-level <level>', 'pino log level', DEFAULTS.logLevel)
    .option('--segment-delta-max <n>', 'write a new index segment set for this host\'s readers once this many changes came after the current one (as the writer does)', parsePositiveInt, DEFAULTS.segmentDeltaMax)
    .action(async (opts: ReplicaOptions) => {
      if (opts.nats.length === 0) {
        process.stderr.write('haarseek replica: --nats URL is required (a server of the NATS cluster the writer publishes to)\n');
        process.exit(2);
      }
      const dataDir = resolve(opts.data);
      mkdirSync(dataDir, { recursive: true });
      const dbPath = databasePath(dataDir);
      const log = await createLogger(opts.logLevel, { role: 'replica', port: opts.port }, new LogRing(50));
      const fail = (err: unknown): never => {
        const known = err instanceof ReplicationError || err instanceof WriterLockedError || err instanceof RangeError;
        if (!known) log.fatal({ err }, 'replica failed');
        process.stderr.write(`haarseek replica: ${(err as Error).message}\n`);
        process.exit(known ? 2 : 1);
      };
      // Loaded here, not at the top: `haarseek --help` never loads the replica.
      const { acquireWriterLock } = await import('../server/writer-lock.ts');
      const { Replica } = await import('./replica.ts');
      const { replicaDelayHistogram, replicaMetrics } = await import('./replica-metrics.ts');
      const { SegmentKeeper } = await import('../server/segment-keeper.ts');
      const { manifestIdentity, manifestPath, readManifest } = await import('../index/segment-manifest.ts');
      let releaseLock: () => Promise<void>;
      try {
        // The replica is its host's only writer of the file: the writer's lock keeps a local writer or an import out.
        releaseLock = await acquireWriterLock(dbPath, opts.port, (err) => {
          log.fatal({ err: err.message }, 'lost the writer lock of the local copy; stopping');
          process.exit(1);
        });
      } catch (err) {
        return fail(err);
      }
      const delays = replicaDelayHistogram();
      const applied = new Set<() => void>();
      const segments = segmentDir(dataDir);
      let replica: InstanceType<typeof Replica>;
      try {
        replica = new Replica({
          servers: opts.nats,
          name: opts.natsStream,
          dataDir,
          dbPath,
          log,
          observeDelay: (ms) => delays.observe(ms / 1000),
          onApplied: () => applied.forEach((listener) => listener()),
          // A snapshot may be of another history: the set of the old file goes, and a new one is written.
          onReplaced: () => rmSync(manifestPath(segments), { force: true }),
        });
        replica.openLocal();
      } catch (err) {
        return fail(err);
      }
      // The host's readers map segments as the writer's do; the replica writes them as the writer would.
      const keeper = new SegmentKeeper({
        dbPath,
        dir: segments,
        store: {
          lastSeq: () => replica.lastSeq(),
          // The replica keeps 200,000 rows, far more than a set is ever behind.
          holdChanges: () => () => undefined,
          onCommit: (listener) => {
            applied.add(listener);
            return () => applied.delete(listener);
          },
        },
        segmentSeq: () => readManifest(segments)?.seq ?? null,
        imagesOutside: () => (manifestIdentity(segments) ? 0 : replica.imageCount()),
        deltaMax: Math.max(1, opts.segmentDeltaMax),
        onWritten: () => undefined,
        log,
      });
      const registry = replicaMetrics(replica, delays, opts.port);
      const server = createServer((req, res) => {
        if (req.url === '/metrics') {
          void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
          return;
        }
        if (req.url === '/health') {
          const body = { ok: replica.ready, role: 'replica', port: opts.port, ...replica.status(), snapshotsInstalled: replica.snapshotsInstalled, lastBootstrapMs: replica.lastBootstrapMs, appliedTotal: replica.applied };
          res.writeHead(replica.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body));
          return;
        }
        res.writeHead(404).end();
      });
      server.on('error', (err) => fail(new ReplicationError(`cannot listen on ${opts.host}:${opts.port}: ${err.message}`)));
      server.listen(opts.port, opts.host);
      let stopping = false;
      const stop = async (reason: string, code = 0) => {
        if (stopping) return;
        stopping = true;
        log.info({ reason }, 'stopping');
        server.close();
        await keeper.stop();
        await replica.close();
        await releaseLock().catch(() => undefined);
        process.exit(code);
      };
      process.on('SIGTERM', () => void stop('SIGTERM'));
      process.on('SIGINT', () => void stop('SIGINT'));
      const supervisor = Number(process.env.HAARSEEK_SUPERVISED);
      if (supervisor > 0) setInterval(() => process.ppid !== supervisor && void stop('supervisor gone'), 1000).unref();
      if (process.send) {
        setInterval(() => process.send?.({ beat: Date.now() }), 1000).unref();
        process.on('disconnect', () => void stop('supervisor gone'));
      }
      log.info({ nats: opts.nats, stream: opts.natsStream, data: dataDir, port: opts.port, appliedSeq: replica.position?.appliedSeq ?? null }, 'replica started');
      try {
        await replica.run();
      } catch (err) {
        if (stopping) return;
        await replica.close().catch(() => undefined);
        await releaseLock().catch(() => undefined);
        fail(err);
      }
    });
}
