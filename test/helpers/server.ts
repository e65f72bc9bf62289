import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import xmlrpc from 'xmlrpc';
import { REPO_ROOT } from './paths.ts';

export const CLI = join(REPO_ROOT, 'bin/haarseek.js');

/** The write key every test server and cluster is started with (HAARSEEK_WRITE_KEY). */
export const TEST_WRITE_KEY = 'test-key-5b7f0c';
/** The environment test processes run with: the machine's, plus the write key. */
export const TEST_ENV = { ...process.env, HAARSEEK_WRITE_KEY: TEST_WRITE_KEY };
/** The header an authorised client sends (Basic auth with the key as password, as `http://user:KEY@host` does). */
export const AUTH_HEADER = `Basic ${Buffer.from(`client:${TEST_WRITE_KEY}`).toString('base64')}`;

/**
 * Ports for test servers come from below Linux's ephemeral range (32768 and up):
 * inside it, an outgoing connection of any process (nginx, a client) can hold a
 * server's port as its source port, and a restarted server then cannot bind it.
 */
const PORT_RANGE = { from: 20_000, to: 32_000 };

export async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A run of `count` free consecutive ports (cluster reader ports are base + i). */
export async function freePortRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from - count));
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = await isFree(base + i);
    if (ok) return base;
  }
  throw new Error('no run of free ports');
}

export async function freePort(): Promise<number> {
  return freePortRun(1);
}

export function tempDataDir(prefix = 'haarseek-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface ServerProcess {
  role: 'writer' | 'reader';
  port: number;
  url: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `haarseek serve` and waits until /health answers 200. */
export async function startServerProcess(
  role: 'writer' | 'reader',
  dataDir: string,
  opts: { port?: number; writerUrl?: string; extraArgs?: string[]; waitHealthy?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<ServerProcess> {
  const port = opts.port ?? (await freePort());
  const args = [CLI, 'serve', '--role', role, '--data', dataDir, '--port', String(port), '--log-level', 'warn', ...(opts.extraArgs ?? [])];
  if (opts.writerUrl) args.push('--writer-url', opts.writerUrl);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? TEST_ENV });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const proc: ServerProcess = { role, port, url: `http://127.0.0.1:${port}/RPC`, child, output: () => out, exited };
  if (opts.waitHealthy !== false) await waitHealthy(proc);
  return proc;
}

export async function waitHealthy(proc: ServerProcess, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.role} exited with ${proc.child.exitCode}: ${proc.output()}`);
    try {
      const res = await fetch(`http://127.0.0.1:${proc.port}/health`);
      if (res.ok) return (await res.json()) as Record<string, unknown>;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${proc.role} on ${proc.port} not healthy after ${timeoutMs} ms: ${proc.output()}`);
}

export async function health(port: number): Promise<Record<string, any>> {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return (await res.json()) as Record<string, any>;
}

export async function stopProcess(proc: ServerProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
  await proc.exited;
  clearTimeout(timer);
}

export class RpcFault extends Error {
  constructor(readonly faultCode: number, readonly faultString: string) {
    super(`fault ${faultCode}: ${faultString}`);
  }
}

/**
 * A promise-returning XML-RPC client (the `xmlrpc` package), sending the test write key
 * as Basic auth unless `key` is null (an anonymous client) or another key.
 */
export function rpcClient(url: string, key: string | null = TEST_WRITE_KEY): (method: string, ...params: unknown[]) => Promise<any> {
  const client = xmlrpc.createClient(key === null ? url : { url, basic_auth: { user: 'client', pass: key } });
  return (method, ...params) =>
    new Promise((resolve, reject) => {
      client.methodCall(method, params, (err: any, value: unknown) => {
        if (err && typeof err.faultCode === 'number') reject(new RpcFault(err.faultCode, err.faultString));
        else if (err) reject(err);
        else resolve(value);
      });
    });
}

/** Posts a raw body to an XML-RPC endpoint and returns the response text. */
export async function postRaw(url: string, body: string | Buffer, authorized = true): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = { 'content-type': 'text/xml' };
  if (authorized) headers.authorization = AUTH_HEADER;
  const res = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body) });
  return { status: res.status, text: await res.text() };
}

export async function expectFault(promise: Promise<unknown>, code: number): Promise<RpcFault> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof RpcFault) {
      if (err.faultCode !== code) throw new Error(`expected fault ${code}, got ${err.faultCode}: ${err.faultString}`);
      if (err.faultString.length < 10) throw new Error(`fault message too short to act on: ${err.faultString}`);
      return err;
    }
    throw err;
  }
  throw new Error(`expected fault ${code}, got a result`);
}

/** The URL with the test write key in it, as a Python, Ruby or PHP user writes it. */
export function keyedUrl(url: string, key = TEST_WRITE_KEY): string {
  const u = new URL(url);
  u.username = 'client';
  u.password = key;
  return u.href;
}
