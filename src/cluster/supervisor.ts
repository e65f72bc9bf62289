import { spawnSync } from 'node:child_process';
import type { Server } from 'node:http';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import type { Logger } from 'pino';
import { Instance, type InstanceSpec, type RestartPolicy } from './instance.ts';
import { serveSupervisorMetrics } from './metrics.ts';
import { NginxFront, findNginx } from './nginx.ts';
import { ClusterLockedError } from '../errors.ts';
import { PACKAGE_ROOT } from '../package-root.ts';
import { databasePath } from '../server/config.ts';

const CLI = join(PACKAGE_ROOT, 'bin/haarseek.js');
/** The longest the writer waits for a first reader at a start on an existing database. */
const WRITER_START_DELAY_MS = 3000;

export interface ClusterConfig {
  dataDir: string;
  /** Address of the writer and the readers (internal; loopback by default). */
  host: string;
  /** Address of the nginx front: exposing it never exposes the processes behind it. */
  frontHost: string;
  frontPort: number;
  /** The supervisor's own /metrics (internal host); 0: none. */
  metricsPort: number;
  /** Given to every process through its environment. */
  writeKey: string;
  writerPort: number;
  readerBasePort: number;
  readers: number;
  /** Pin reader i to CPU i mod the CPU count (taskset), one core per reader process. */
  pinReaders: boolean;
  nginx: boolean;
  allowDirs: string[];
  logLevel: string;
  maxBodyBytes: number;
  /** Extra flags passed to every `haarseek serve`. */
  serveArgs: string[];
  healthIntervalMs: number;
  stopBoundMs: number;
  policy: RestartPolicy;
  /** Extra flags of the writer only (--nats...). */
  writerArgs?: string[];
  /**
   * A host without a writer (cluster --follow): a `haarseek replica` takes the writer's
   * place, fed by these NATS servers; readers forward writes to writerUrl, or refuse them.
   */
  follow?: { servers: string[]; name: string; replicaPort: number; writerUrl?: string };
}

function findTaskset(): string | null {
  for (const candidate of ['taskset', '/usr/bin/taskset']) {
    if (spawnSync(candidate, ['-V'], { stdio: 'ignore' }).status === 0) return candidate;
  }
  return null;
}


/**
 * Starts the writer, the readers and nginx; keeps them running; stops them all on
 * SIGINT/SIGTERM.
 */
export class Supervisor {
  private readonly writer: Instance;
  private readonly readers: Instance[] = [];
  private front: NginxFront | null = null;
  private healthTimer: NodeJS.Timeout | null = null;
  private releaseLock: (() => Promise<void>) | null = null;
  private announced = false;
  private stopping = false;
  private rotation = '';
  private metricsServer: Server | null = null;
  private writerStartTimer: NodeJS.Timeout | null = null;

  constructor(private readonly config: ClusterConfig, private readonly log: Logger) {
    const common = ['--data', config.dataDir, '--host', config.host, '--log-level', config.logLevel, '--max-body-bytes', String(config.maxBodyBytes)];
    for (const dir of config.allowDirs) common.push('--allow-dir', dir);
    common.push(...config.serveArgs);
    const onState = (instance: Instance) => this.onStateChange(instance);
    const spec = (role: 'writer' | 'reader', name: string, port: number, extra: string[]): InstanceSpec => ({
      name,
      role,
      host: config.host,
      port,
      args: [CLI, 'serve', '--role', role, '--port', String(port), ...common, ...extra],
      env: { HAARSEEK_WRITE_KEY: config.writeKey },
    });
    // On a follow host `writer` is the replica: the one process that writes the local file.
    const follow = config.follow;
    const primary: InstanceSpec = follow
      ? {
          name: 'replica',
          role: 'replica',
          host: config.host,
          port: follow.replicaPort,
          args: [CLI, 'replica', ...follow.servers.flatMap((url) => ['--nats', url]), '--nats-stream', follow.name, '--data', config.dataDir, '--host', config.host, '--port', String(follow.replicaPort), '--log-level', config.logLevel],
          env: { HAARSEEK_WRITE_KEY: config.writeKey },
        }
      : spec('writer', 'writer', config.writerPort, config.writerArgs ?? []);
    this.writer = new Instance(primary, config.policy, log, onState);
    const readerArgs = follow ? ['--follower', ...(follow.writerUrl ? ['--writer-url', follow.writerUrl] : ['--no-forward'])] : ['--writer-url', this.writerUrl];
    const taskset = config.pinReaders ? findTaskset() : null;
    if (config.pinReaders && !taskset) log.warn('--pin-readers: taskset not found (util-linux); readers run unpinned');
    for (let i = 0; i < config.readers; i++) {
      const port = config.readerBasePort + i;
      const reader = spec('reader', `reader-${i + 1}`, port, readerArgs);
      const pinned = taskset ? { ...reader, taskset, cpu: i % availableParallelism() } : reader;
      this.readers.push(new Instance(pinned, config.policy, log, onState));
    }
  }

  get writerUrl(): string {
    if (this.config.follow) return this.config.follow.writerUrl ?? '(the writer host)';
    return `http://${this.config.host}:${this.config.writerPort}/RPC`;
  }

  get frontUrl(): string | null {
    return this.front ? `http://${this.config.frontHost}:${this.config.frontPort}/RPC` : null;
  }

  async start(): Promise<void> {
    mkdirSync(this.config.dataDir, { recursive: true });
    this.warnOfEphemeralPorts();
    const lockTarget = join(resolve(this.config.dataDir), 'cluster');
    try {
      this.releaseLock = await lockfile.lock(this.config.dataDir, { realpath: false, lockfilePath: `${lockTarget}.lock`, stale: 10_000, update: 2_000 });
    } catch (err) {
      if ((err as { code?: string }).code === 'ELOCKED') {
        throw new ClusterLockedError(`another haarseek cluster is running on ${resolve(this.config.dataDir)} (lock ${lockTarget}.lock); stop it first`);
      }
      throw err;
    }
    if (this.config.nginx) {
      const binary = findNginx();
      if (binary) {
        this.front = new NginxFront(binary, {
          prefix: join(resolve(this.config.dataDir), 'nginx'),
          host: this.config.frontHost,
          port: this.config.frontPort,
          maxBodyBytes: this.config.maxBodyBytes,
          readTimeoutSeconds: 120,
          accessLog: false,
        });
      } else {
        this.log.warn('nginx is not installed: running without the front; send reads to the readers directly');
      }
    }
    if (existsSync(databasePath(this.config.dataDir))) {
      // Readers serve from the file (and its segments) without the writer: the front
      // answers once one of them is up, which the writer's start would slow on a small
      // machine; it follows once a reader is healthy, or after WRITER_START_DELAY_MS.
      for (const reader of this.readers) reader.start();
      this.writerStartTimer = setTimeout(() => this.startWriter(), WRITER_START_DELAY_MS);
    } else {
      this.writer.start(); // it creates the database the readers wait for
      for (const reader of this.readers) reader.start();
    }
    if (this.front) {
      this.front.write(this.readers.map((r) => r.address));
      const problem = this.front.test();
      if (problem) throw new Error(`the rendered nginx config does not pass nginx -t: ${problem}`);
      this.rotation = this.readers.map((r) => r.address).join(',');
      this.front.start((code, signal) => {
        if (!this.stopping) this.log.error({ code, signal }, 'nginx exited; the front is down (readers still answer on their own ports)');
      });
      this.log.info({ nginxPid: this.front.pid, port: this.config.frontPort }, 'nginx started');
    }
    this.healthTimer = setInterval(() => void this.checkHealth(), this.config.healthIntervalMs);
    if (this.config.metricsPort > 0) {
      const instances = () => [this.writer, ...this.readers];
      this.metricsServer = serveSupervisorMetrics(this.config.host, this.config.metricsPort, instances, (r) => this.rotation.split(',').includes(r.address));
      this.metricsServer.on('error', (err) => this.log.warn({ err: err.message, port: this.config.metricsPort }, 'the supervisor\'s /metrics could not listen; the cluster runs without it'));
    }
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.healthTimer) clearInterval(this.healthTimer);
    if (this.writerStartTimer) clearTimeout(this.writerStartTimer);
    this.metricsServer?.close();
    this.log.info('stopping: nginx first (no new requests), then readers and the writer');
    await this.front?.stop(this.config.stopBoundMs);
    await Promise.all(this.readers.map((r) => r.stop(this.config.stopBoundMs)));
    await this.writer.stop(this.config.stopBoundMs);
    await this.releaseLock?.();
    this.log.info('all stopped');
  }

  status(): Array<{ name: string; state: string; port: number; pid?: number; restarts: number }> {
    return [this.writer, ...this.readers].map((i) => ({ name: i.spec.name, state: i.state, port: i.spec.port, pid: i.pid, restarts: i.restarts }));
  }

  /**
   * Outgoing connections (nginx to the readers, clients, health checks) take their
   * source ports from the ephemeral range; a listening port of ours inside it can be
   * held by one of them while its process restarts, and the restart then fails.
   */
  private warnOfEphemeralPorts(): void {
    let range: number[];
    try {
      range = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    } catch {
      return;
    }
    const ports = [this.config.frontPort, this.config.writerPort, ...this.readers.map((r) => r.spec.port)];
    const inside = ports.filter((p) => p >= range[0] && p <= range[1]);
    if (inside.length > 0) {
      this.log.warn({ ports: inside, ephemeralRange: `${range[0]}-${range[1]}` }, 'ports inside the ephemeral port range: a restarting process can find its port held by an outgoing connection; choose ports below that range');
    }
  }

  private async checkHealth(): Promise<void> {
    await Promise.all(
      [this.writer, ...this.readers].map(async (instance) => {
        if (instance.state === 'given-up' || instance.state === 'backoff' || instance.pid === undefined) return;
        let ok = false;
        try {
          const res = await fetch(`http://${instance.address}/health`, { signal: AbortSignal.timeout(Math.max(1000, this.config.healthIntervalMs * 2)) });
          ok = res.ok;
          await res.body?.cancel();
        } catch {
          ok = false;
        }
        if (!this.stopping) instance.reportHealth(ok);
      }),
    );
  }

  private startWriter(): void {
    if (this.writerStartTimer) clearTimeout(this.writerStartTimer);
    this.writerStartTimer = null;
    if (this.writer.state === 'stopped' && this.writer.pid === undefined && !this.stopping) this.writer.start();
  }

  private onStateChange(instance: Instance): void {
    if (this.stopping) return;
    if (instance.spec.role === 'reader' && instance.state === 'healthy' && this.writerStartTimer) this.startWriter();
    if (instance.state === 'healthy') this.log.info({ instance: instance.spec.name, port: instance.spec.port, childPid: instance.pid }, 'healthy');
    if (instance.spec.role === 'reader') this.updateRotation();
    if (!this.announced && [this.writer, ...this.readers].every((i) => i.state === 'healthy')) {
      this.announced = true;
      this.announce();
    }
  }

  /**
   * A reader that dies or stalls briefly is skipped by nginx itself (passive checks:
   * one failure takes it out for fail_timeout, and the request goes to the next
   * reader). The upstream list is rewritten, and nginx reloaded, only when a reader is
   * given up or comes back from that: a reload closes clients' idle keep-alive
   * connections, which a client racing a new request sees as a failure.
   */
  private updateRotation(): void {
    if (!this.front) return;
    const serving = this.readers.filter((r) => r.state !== 'given-up').map((r) => r.address);
    const next = (serving.length > 0 ? serving : this.readers.map((r) => r.address)).join(',');
    if (next === this.rotation) return;
    this.rotation = next;
    this.front.write(next.split(','));
    this.front.reload();
    this.log.info({ readers: next.split(',') }, 'nginx rotation updated');
  }

  private announce(): void {
    const lines = [
      'haarseek cluster is up',
      this.front ? `  reads (and writes, forwarded): ${this.frontUrl}` : '  no nginx front: send reads to a reader directly',
      this.config.follow
        ? `  replica (follows NATS):         http://${this.writer.address}/health; writes go to ${this.writerUrl}`
        : `  writes (the writer):            ${this.writerUrl}`,
      ...(this.metricsServer ? [`  supervisor metrics:             http://${this.config.host}:${this.config.metricsPort}/metrics`] : []),
      `  readers:                        ${this.readers.map((r) => `http://${r.address}/RPC`).join(' ')}`,
      `  data:                           ${resolve(this.config.dataDir)}`,
    ];
    process.stderr.write(`${lines.join('\n')}\n`);
    this.log.info({ front: this.frontUrl, writer: this.writerUrl, readers: this.readers.map((r) => r.address) }, 'cluster ready');
  }
}
