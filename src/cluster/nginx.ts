import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.ts';

const TEMPLATE = join(PACKAGE_ROOT, 'nginx/haarseek.conf.template');

export interface FrontConfig {
  /** nginx's prefix: config, pid, logs and temp files live here. */
  prefix: string;
  host: string;
  port: number;
  maxBodyBytes: number;
  readTimeoutSeconds: number;
  accessLog: boolean;
}

/** The nginx binary on PATH (or the usual sbin places), or null. */
export function findNginx(): string | null {
  for (const candidate of ['nginx', '/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']) {
    const probe = spawnSync(candidate, ['-v'], { stdio: 'ignore' });
    if (probe.status === 0) return candidate;
  }
  return null;
}

/** The descriptor limit nginx may raise itself to: the hard limit, capped. */
function descriptorLimit(): number {
  const probe = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' });
  const hard = probe.stdout.trim();
  return hard === 'unlimited' ? 65_536 : Math.min(65_536, Number(hard) || 4096);
}

export function renderNginxConfig(front: FrontConfig, readerAddresses: string[]): string {
  // max_fails=0: a busy reader's 503 must not take it out of the rotation (with every
  // reader briefly full, nginx would otherwise answer 502 "no live upstreams" for
  // fail_timeout); a dead reader still costs only a refused connect before the next try.
  const servers = readerAddresses.map((addr) => `    server ${addr} max_fails=0;`).join('\n');
  const nofile = descriptorLimit();
  const values: Record<string, string> = {
    PREFIX: front.prefix,
    HOST: front.host,
    PORT: String(front.port),
    WORKERS: '1',
    // Started by root, nginx would run its workers as nobody, who cannot write the
    // body temp files inside a private data directory: keep the supervisor's user.
    USER: process.getuid?.() === 0 ? 'user root;\n' : '',
    NOFILE: String(nofile),
    // A few descriptors stay free for logs and the listening socket.
    WORKER_CONNECTIONS: String(Math.max(1024, nofile - 64)),
    MAX_BODY_BYTES: String(front.maxBodyBytes),
    READ_TIMEOUT_S: String(front.readTimeoutSeconds),
    ACCESS_LOG: front.accessLog ? `${front.prefix}/access.log` : 'off',
    UPSTREAM_SERVERS: servers,
  };
  return readFileSync(TEMPLATE, 'utf8').replace(/\{\{([A-Z_]+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`nginx template: unknown placeholder ${key}`);
    return values[key];
  });
}

/** nginx run as the supervisor's own child, with every path under its prefix. */
export class NginxFront {
  private child: ChildProcess | null = null;
  readonly configPath: string;

  constructor(private readonly binary: string, private readonly front: FrontConfig) {
    this.configPath = join(front.prefix, 'nginx.conf');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  write(readerAddresses: string[]): void {
    for (const dir of ['tmp/client_body', 'tmp/proxy', 'tmp/fastcgi', 'tmp/uwsgi', 'tmp/scgi']) {
      mkdirSync(join(this.front.prefix, dir), { recursive: true });
    }
    writeFileSync(this.configPath, renderNginxConfig(this.front, readerAddresses));
  }

  /** Checks the rendered config with `nginx -t` and returns its complaint, if any. */
  test(): string | null {
    const result = spawnSync(this.binary, this.args('-t'), { encoding: 'utf8' });
    return result.status === 0 ? null : `${result.stderr}`.trim();
  }

  start(onExit: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.child = spawn(this.binary, this.args(), { stdio: ['ignore', 'inherit', 'inherit'] });
    this.child.once('exit', (code, signal) => {
      this.child = null;
      onExit(code, signal);
    });
  }

  /** Re-reads the config: new workers take over, old ones finish their requests. */
  reload(): void {
    this.child?.kill('SIGHUP');
  }

  /** Graceful stop (SIGQUIT lets workers finish), SIGKILL after the bound. */
  async stop(boundMs: number): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGQUIT');
    const timer = setTimeout(() => child.kill('SIGKILL'), boundMs);
    await exited;
    clearTimeout(timer);
  }

  private args(...extra: string[]): string[] {
    return ['-p', this.front.prefix, '-c', this.configPath, '-e', join(this.front.prefix, 'error.log'), ...extra];
  }
}
