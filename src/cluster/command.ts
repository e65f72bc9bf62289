import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import pino from 'pino';
import { DEFAULTS } from '../server/config.ts';
import { collect, parsePositiveInt } from '../server/command.ts';
import { terminalOrJson } from '../server/log.ts';
import { writeKeyOrExit } from '../server/write-key.ts';
import { ClusterLockedError } from '../errors.ts';

interface ClusterOptions {
  readers: number;
  pinReaders?: boolean;
  data: string;
  host: string;
  frontHost: string;
  writeKey?: string;
  stallTimeoutMs: number;
  metricsPort?: number;
  port: number;
  writerPort: number;
  readerBasePort: number;
  nginx: boolean;
  allowDir: string[];
  logLevel: string;
  maxBodyBytes: number;
  healthIntervalMs: number;
  crashLoopLimit: number;
  startupTimeoutMs: number;
  serveArg: string[];
  nats: string[];
  natsStream: string;
  follow: string[];
  writerUrl?: string;
  replicaPort: number;
}

/** Adds the cluster's options and action to a command (`haarseek cluster` or launch-cluster.ts). */
export function configureClusterCommand(command: Command): Command {
  return command
    .description('run a haarseek cluster: one writer (or, with --follow, a replica), N readers and an nginx front, supervised')
    .option('--readers <n>', 'reader processes', parsePositiveInt, availableParallelism())
    .option('--pin-readers', 'pin reader i to CPU i (taskset): each reader, its decode threads included, on one core of its own')
    .option('--data <dir>', 'data directory holding haarseek.db', DEFAULTS.dataDir)
    .option('--host <host>', 'address the writer and the readers listen on (keep it internal)', DEFAULTS.host)
    .option('--front-host <host>', 'address the nginx front listens on (e.g. 0.0.0.0 to serve the network)', DEFAULTS.host)
    .option('--write-key <key>', 'key for write and admin calls (default: HAARSEEK_WRITE_KEY, else DATA/write.key, generated when missing)')
    .option('--metrics-port <port>', 'the supervisor\'s own /metrics (restarts, states, upstream readers); 0 for none (default: the first reader port - 1)', parsePositiveInt)
    .option('--stall-timeout-ms <n>', 'a process that sends no heartbeat for this long is restarted (a busy one still beats)', parsePositiveInt, 60_000)
    .option('--port <port>', 'nginx front port (reads, and writes forwarded)', parsePositiveInt, DEFAULTS.frontPort)
    .option('--writer-port <port>', 'writer port', parsePositiveInt, DEFAULTS.writerPort)
    .option('--reader-base-port <port>', 'first reader port; reader i listens on base + i', parsePositiveInt, DEFAULTS.readerBasePort)
    .option('--no-nginx', 'do not run the nginx front')
    .option('--allow-dir <dir>', 'directory path arguments may use; repeatable (default: the data directory)', collect, [])
    .option('--log-level <level>', 'pino log level of every process', DEFAULTS.logLevel)
    .option('--max-body-bytes <n>', 'largest request accepted, by nginx and the servers', parsePositiveInt, DEFAULTS.maxBodyBytes)
    .option('--health-interval-ms <n>', 'how often each process\'s /health is checked', parsePositiveInt, 1000)
    .option('--crash-loop-limit <n>', 'consecutive failed starts after which an instance is given up', parsePositiveInt, 5)
    .option('--startup-timeout-ms <n>', 'how long a starting process may take to answer /health', parsePositiveInt, 300_000)
    .option('--serve-arg <arg>', 'extra flag passed to every `haarseek serve` (repeatable), e.g. --serve-arg=--max-pixels=50000000', collect, [])
    .option('--nats <url>', 'the writer publishes its changes to this NATS JetStream cluster (repeatable; see `haarseek serve --nats`)', collect, [])
    .option('--nats-stream <name>', 'name of the stream and snapshot bucket, for --nats and --follow', 'haarseek')
    .option('--follow <url>', 'a host without a writer: a replica fed by this NATS cluster (repeatable) replaces the writer', collect, [])
    .option('--writer-url <url>', 'with --follow: the XML-RPC URL of the writer host, where readers forward keyed writes (default: they refuse writes)')
    .option('--replica-port <port>', 'with --follow: port of the replica (its /health and /metrics)', parsePositiveInt, 31126)
    .action(async (opts: ClusterOptions) => {
      const log = pino({ level: opts.logLevel, base: { pid: process.pid, role: 'supervisor' } }, await terminalOrJson());
      if (opts.follow.length > 0 && opts.nats.length > 0) {
        process.stderr.write('haarseek cluster: --follow (a host without a writer) and --nats (the writer publishes) exclude each other\n');
        process.exit(2);
      }
      if (opts.readers < 1) {
        process.stderr.write('haarseek cluster: --readers must be at least 1\n');
        process.exit(2);
      }
      mkdirSync(opts.data, { recursive: true });
      const key = writeKeyOrExit(resolve(opts.data), opts.writeKey ?? process.env.HAARSEEK_WRITE_KEY, 'haarseek cluster');
      const { Supervisor } = await import('./supervisor.ts');
      const supervisor = new Supervisor(
        {
          dataDir: opts.data,
          host: opts.host,
          frontHost: opts.frontHost,
          metricsPort: opts.metricsPort ?? opts.readerBasePort - 1,
          writeKey: key.key,
          frontPort: opts.port,
          writerPort: opts.writerPort,
          readerBasePort: opts.readerBasePort,
          readers: opts.readers,
          pinReaders: opts.pinReaders === true,
          nginx: opts.nginx,
          allowDirs: opts.allowDir,
          logLevel: opts.logLevel,
          maxBodyBytes: opts.maxBodyBytes,
          serveArgs: opts.serveArg,
          writerArgs: opts.nats.flatMap((url) => ['--nats', url]).concat(opts.nats.length > 0 ? ['--nats-stream', opts.natsStream] : []),
          follow: opts.follow.length > 0 ? { servers: opts.follow, name: opts.natsStream, replicaPort: opts.replicaPort, writerUrl: opts.writerUrl } : undefined,
          healthIntervalMs: opts.healthIntervalMs,
          stopBoundMs: 10_000,
          policy: {
            initialBackoffMs: 250,
            maxBackoffMs: 30_000,
            stableAfterMs: 30_000,
            crashLoopLimit: opts.crashLoopLimit,
            stallTimeoutMs: opts.stallTimeoutMs,
            startupTimeoutMs: opts.startupTimeoutMs,
          },
        },
        log,
      );
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'received; stopping the cluster');
        await supervisor.stop();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
      if (key.generated) {
        process.stderr.write(`haarseek: generated a write key for write and admin calls (kept in ${key.file}, mode 0600):\n  ${key.key}\n  send it as http://anyname:${key.key}@host/RPC or "Authorization: Bearer ${key.key}"\n`);
      } else if (key.file) {
        log.info({ file: key.file }, 'write key read from the data directory');
      }
      try {
        await supervisor.start();
      } catch (err) {
        process.stderr.write(`haarseek cluster: ${(err as Error).message}\n`);
        await supervisor.stop().catch(() => undefined);
        process.exit(err instanceof ClusterLockedError ? 2 : 1);
      }
    });
}

export function registerClusterCommand(program: Command): void {
  configureClusterCommand(program.command('cluster'));
}
