import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from 'pino';

export interface InstanceSpec {
  name: string;
  role: 'writer' | 'reader' | 'replica';
  host: string;
  port: number;
  /** Full argv after the node binary. */
  args: string[];
  /** Run the process, all its threads included, on this CPU only (through taskset). */
  cpu?: number;
  /** taskset's path, when cpu is set. */
  taskset?: string;
  /** Extra environment (the write key travels here, never on the command line). */
  env?: Record<string, string>;
}

export interface RestartPolicy {
  /** Restart delay after a second consecutive failure (the first restarts at once); doubles per further failure. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** A run this long counts as stable and resets the backoff. */
  stableAfterMs: number;
  /** Consecutive unstable runs after which the instance is given up. */
  crashLoopLimit: number;
  /**
   * A running process that sends no heartbeat for this long is stuck and is restarted.
   * Busy is not stuck: a busy process's event loop still turns and beats; failed /health
   * checks alone never restart anything.
   */
  stallTimeoutMs: number;
  /** How long a starting instance may take to answer /health (large databases load first). */
  startupTimeoutMs: number;
}

export type InstanceState = 'starting' | 'healthy' | 'unhealthy' | 'backoff' | 'given-up' | 'stopped';

/**
 * One supervised child process: spawned, health-checked, restarted with exponential
 * backoff when it exits or stops answering, and given up after a crash loop.
 */
export class Instance {
  state: InstanceState = 'stopped';
  restarts = 0;
  private child: ChildProcess | null = null;
  private startedAt = 0;
  private consecutiveFailures = 0;
  private lastBeat = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private stopping = false;

  constructor(
    readonly spec: InstanceSpec,
    private readonly policy: RestartPolicy,
    private readonly log: Logger,
    private readonly onStateChange: (instance: Instance) => void,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get address(): string {
    return `${this.spec.host}:${this.spec.port}`;
  }

  start(): void {
    this.stopping = false;
    this.startedAt = Date.now();
    this.lastBeat = Date.now();
    // Its own process group: a Ctrl-C meant for the supervisor does not reach the child
    // directly, so the supervisor can stop everything in order. HAARSEEK_SUPERVISED
    // makes the child exit if the supervisor itself dies.
    const pinned = this.spec.cpu !== undefined && this.spec.taskset !== undefined;
    // taskset execs node in place, so the pid is node's and signals reach it.
    const [command, args] = pinned
      ? [this.spec.taskset!, ['-c', String(this.spec.cpu), process.execPath, ...this.spec.args]]
      : [process.execPath, this.spec.args];
    const child = spawn(command, args, {
      // The IPC channel carries the child's heartbeats (and tells it if we vanish).
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      detached: true,
      env: { ...process.env, ...this.spec.env, HAARSEEK_SUPERVISED: String(process.pid) },
    });
    child.on('message', () => {
      this.lastBeat = Date.now();
    });
    this.child = child;
    this.setState('starting');
    this.log.info({ instance: this.spec.name, childPid: child.pid, port: this.spec.port, cpu: pinned ? this.spec.cpu : undefined }, 'started');
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
  }

  /**
   * Called by the supervisor's health loop with the result of GET /health. /health says
   * whether the instance can serve (state); whether it is alive is the heartbeat's call.
   */
  reportHealth(ok: boolean): void {
    if (this.stopping || !this.child || this.state === 'backoff') return;
    const now = Date.now();
    if (now - this.lastBeat > this.policy.stallTimeoutMs) {
      this.log.error({ instance: this.spec.name, childPid: this.child.pid, silentMs: now - this.lastBeat }, 'made no progress (no heartbeat) for too long; restarting');
      this.child.kill('SIGKILL');
      return;
    }
    if (ok) {
      if (now - this.startedAt >= this.policy.stableAfterMs) this.consecutiveFailures = 0;
      this.setState('healthy');
      return;
    }
    if (this.state === 'starting') {
      if (now - this.startedAt < this.policy.startupTimeoutMs) return;
      this.log.warn({ instance: this.spec.name, afterMs: now - this.startedAt }, 'did not become healthy in time; restarting');
      this.child.kill('SIGKILL');
      return;
    }
    if (this.state !== 'unhealthy') this.log.warn({ instance: this.spec.name }, '/health did not answer in time (busy or loading); not restarting while it beats');
    this.setState('unhealthy');
  }

  async stop(boundMs: number): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      this.setState('stopped');
      return;
    }
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.log.warn({ instance: this.spec.name }, 'did not stop in time; killing');
      child.kill('SIGKILL');
    }, boundMs);
    await exited;
    clearTimeout(timer);
    this.setState('stopped');
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = null;
    if (this.stopping) {
      this.log.info({ instance: this.spec.name, code, signal }, 'exited');
      this.setState('stopped');
      return;
    }
    const ranMs = Date.now() - this.startedAt;
    if (code === 0 && signal === null) {
      // Only a requested stop (shutdownServer) exits 0 on its own: no crash, start it again.
      this.log.info({ instance: this.spec.name, ranMs }, 'stopped on request (shutdownServer); starting it again');
      this.setState('backoff');
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        this.start();
      }, this.policy.initialBackoffMs);
      return;
    }
    this.consecutiveFailures = ranMs >= this.policy.stableAfterMs ? 1 : this.consecutiveFailures + 1;
    if (this.consecutiveFailures > this.policy.crashLoopLimit) {
      this.log.error(
        { instance: this.spec.name, code, signal, failures: this.consecutiveFailures - 1 },
        `CRASH LOOP: ${this.spec.name} failed ${this.consecutiveFailures - 1} times in a row; giving up on it (the rest of the cluster keeps serving)`,
      );
      this.setState('given-up');
      return;
    }
    // The first failure after a stable run restarts at once (a killed reader is back within
    // its start time); only repeated failures wait, doubling from initialBackoffMs.
    const delay = this.consecutiveFailures === 1 ? 0 : Math.min(this.policy.initialBackoffMs * 2 ** (this.consecutiveFailures - 2), this.policy.maxBackoffMs);
    this.log.warn({ instance: this.spec.name, code, signal, ranMs, restartInMs: delay, attempt: this.consecutiveFailures }, 'exited unexpectedly; restarting after backoff');
    this.setState('backoff');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.restarts++;
      this.start();
    }, delay);
  }

  private setState(state: InstanceState): void {
    if (this.state === state) return;
    this.state = state;
    this.onStateChange(this);
  }
}
