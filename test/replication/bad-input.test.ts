import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { connect, StorageType } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { original } from '../helpers/corpus.ts';
import { NatsCluster, rangePort, startReplica, until } from '../helpers/nats.ts';
import { CLI, TEST_ENV, type ServerProcess, health, rpcClient, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';

/** Runs a command to its end; stderr apart, as an operator sees it. */
async function runToEnd(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: TEST_ENV });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stderr };
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
  return lines[0];
}

describe('replication refuses bad input with one clear line', () => {
  const root = tempDataDir('haarseek-repl-bad-');
  let nats: NatsCluster;
  let http: Server;
  let httpPort: number;
  let writer: ServerProcess | undefined;

  beforeAll(async () => {
    nats = await NatsCluster.start(root, 1);
    httpPort = await rangePort();
    http = createServer((_req, res) => res.end('hello'));
    await new Promise<void>((resolve) => http.listen(httpPort, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await stopProcess(writer);
    http?.close();
    await nats?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('a NATS URL that is not NATS, or none: the replica and the writer stop with one line, exit 2', async () => {
    const replica = await runToEnd(['replica', '--nats', `nats://127.0.0.1:${httpPort}`, '--data', join(root, 'r-http'), '--port', String(await rangePort())]);
    expect(replica.code).toBe(2);
    expect(oneLine(replica.stderr)).toMatch(/^haarseek replica: nats:\/\/127\.0\.0\.1:\d+ is not a NATS server: it accepted a connection but sent no NATS greeting/);
    const none = await runToEnd(['replica', '--data', join(root, 'r-none'), '--port', String(await rangePort())]);
    expect(none.code).toBe(2);
    expect(oneLine(none.stderr)).toMatch(/^haarseek replica: --nats URL is required/);
    const serve = await runToEnd(['serve', '--role', 'writer', '--data', join(root, 'w-http'), '--port', String(await rangePort()), '--nats', `nats://127.0.0.1:${httpPort}`]);
    expect(serve.code).toBe(2);
    expect(oneLine(serve.stderr)).toMatch(/^haarseek: --nats nats:\/\/127\.0\.0\.1:\d+ is not a NATS server/);
  });

  it('a damaged snapshot: the replica stops with one line naming it, and leaves no database behind', async () => {
    const nc = await connect({ servers: nats.urls });
    const os = await nc.jetstream().views.os('HAARSEEK_damaged_snapshots', { storage: StorageType.File, replicas: 1 });
    await os.putBlob({ name: 'snapshot-0000000000000005', description: JSON.stringify({ db: 'x', seq: 5, streamStart: 1, bytes: 4096, createdAt: '' }) }, new Uint8Array(4096).fill(7));
    await nc.close();
    const dir = join(root, 'r-damaged');
    const replica = await runToEnd(['replica', '--nats', nats.urls[0], '--nats-stream', 'damaged', '--data', dir, '--port', String(await rangePort())]);
    expect(replica.code).toBe(2);
    expect(oneLine(replica.stderr)).toMatch(/^haarseek replica: snapshot snapshot-0000000000000005 is damaged \(4096 bytes\): /);
    expect(existsSync(join(dir, 'haarseek.db'))).toBe(false);
    expect(existsSync(join(dir, 'haarseek.db.snapshot'))).toBe(false);
  });

  it('a stream of another database: a replica of database A pointed at B\'s stream stops with one line; a writer of B on A\'s stream publishes nothing and says why', async () => {
    const dirA = join(root, 'writer-a');
    const dirB = join(root, 'writer-b');
    mkdirSync(dirA, { recursive: true });
    writer = await startServerProcess('writer', dirA, { port: await rangePort(), extraArgs: ['--nats', nats.urls[0], '--nats-stream', 'alpha', '--nats-replicas', '1'] });
    await rpcClient(writer.url)('addImgBlob', 1, 1, original(1));
    const replicaDir = join(root, 'replica-of-a');
    const replica = await startReplica(replicaDir, nats.urls, { stream: 'alpha' });
    await until(async () => (await health(replica.port)).appliedSeq >= 2, 60_000, () => replica.output());
    replica.child.kill('SIGTERM');
    await replica.exited;
    await stopProcess(writer);

    writer = await startServerProcess('writer', dirB, { port: await rangePort(), extraArgs: ['--nats', nats.urls[0], '--nats-stream', 'beta', '--nats-replicas', '1'] });
    await rpcClient(writer.url)('createDb', 3);
    await until(async () => (await health(writer!.port)).nats?.backlog === 0, 60_000, () => writer!.output());
    const wrong = await runToEnd(['replica', '--nats', nats.urls[0], '--nats-stream', 'beta', '--data', replicaDir, '--port', String(await rangePort())]);
    expect(wrong.code).toBe(2);
    expect(oneLine(wrong.stderr)).toMatch(/^haarseek replica: the bucket HAARSEEK_beta_snapshots holds snapshots of database [0-9a-f-]+, but .* is a replica of database [0-9a-f-]+|^haarseek replica: stream HAARSEEK_beta carries the changes of database/);
    await stopProcess(writer);

    // Writer B started on A's stream: it keeps serving, publishes nothing, and /health says why.
    writer = await startServerProcess('writer', dirB, { port: await rangePort(), extraArgs: ['--nats', nats.urls[0], '--nats-stream', 'alpha', '--nats-replicas', '1'] });
    await until(async () => (await health(writer!.port)).nats?.state === 'refused', 60_000, () => writer!.output());
    expect((await health(writer.port)).nats.lastError).toMatch(/stream HAARSEEK_alpha carries the changes of another database/);
    expect(await rpcClient(writer.url)('getDbList')).toEqual([3]);
  });
});
