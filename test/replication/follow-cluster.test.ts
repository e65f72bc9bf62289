import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { original } from '../helpers/corpus.ts';
import { NGINX_INSTALLED, processesUsing } from '../helpers/cluster.ts';
import { NatsCluster, rangePort, until } from '../helpers/nats.ts';
import { REPO_ROOT } from '../helpers/paths.ts';
import { type ServerProcess, TEST_ENV, expectFault, health, rpcClient, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';

/** Host A: a writer publishing to NATS. Host B: `haarseek cluster --follow`: replica, readers and nginx, supervised. */
describe.skipIf(!NGINX_INSTALLED)('cluster --follow: a whole reader host fed through NATS', () => {
  const root = tempDataDir('haarseek-follow-');
  let nats: NatsCluster;
  let writer: ServerProcess;
  let cluster: ChildProcess;
  let out = '';
  const hostB = join(root, 'host-b');
  const ports = { front: 0, replica: 0, readers: 0, metrics: 0, writer: 0 };

  beforeAll(async () => {
    nats = await NatsCluster.start(root, 1);
    mkdirSync(join(root, 'host-a'), { recursive: true });
    writer = await startServerProcess('writer', join(root, 'host-a'), { port: await rangePort(), extraArgs: ['--nats', nats.urls[0], '--nats-replicas', '1'] });
    await rpcClient(writer.url)('addImgBlob', 1, 1, original(1));
    ports.front = await rangePort();
    ports.replica = await rangePort();
    ports.metrics = await rangePort();
    ports.writer = await rangePort();
    for (;;) {
      ports.readers = await rangePort();
      if (ports.readers < 25_999 && (await rangePort()) && ![ports.front, ports.replica, ports.metrics, ports.writer].includes(ports.readers + 1)) break;
    }
    cluster = spawn(process.execPath, [
      join(REPO_ROOT, 'dist/launch-cluster.js'), '--follow', nats.urls[0], '--data', hostB, '--readers', '2',
      '--port', String(ports.front), '--replica-port', String(ports.replica), '--reader-base-port', String(ports.readers),
      '--metrics-port', String(ports.metrics), '--writer-port', String(ports.writer), '--health-interval-ms', '300',
    ], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: TEST_ENV });
    cluster.stdout!.on('data', (d) => (out += d));
    cluster.stderr!.on('data', (d) => (out += d));
    await until(() => out.includes('haarseek cluster is up'), 90_000, () => `the follow cluster did not come up:\n${out.slice(-4000)}`);
  });

  afterAll(async () => {
    if (cluster && cluster.exitCode === null) {
      cluster.kill('SIGTERM');
      await new Promise((resolve) => cluster.once('exit', resolve));
    }
    await stopProcess(writer);
    await nats?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves the writer\'s images through its own front, refuses writes there, restarts a killed replica, and leaves nothing behind', async () => {
    const front = rpcClient(`http://127.0.0.1:${ports.front}/RPC`);
    expect(await front('getDbImgIdList', 1)).toEqual([1]);
    await rpcClient(writer.url)('addImgBlob', 1, 2, original(2));
    await until(async () => ((await front('getDbImgIdList', 1)) as number[]).includes(2), 30_000, () => out.slice(-3000));
    const fault = await expectFault(front('removeImg', 1, 1), 5);
    expect(fault.faultString).toMatch(/follows a writer on another host through NATS/);
    // The supervisor restarts a replica that dies, which resumes where it was.
    const replicaPid = (await health(ports.replica)).pid as number;
    process.kill(replicaPid, 'SIGKILL');
    await rpcClient(writer.url)('addImgBlob', 1, 3, original(3));
    await until(async () => ((await health(ports.replica).catch(() => ({ pid: replicaPid }))).pid as number) !== replicaPid, 60_000, () => out.slice(-3000));
    await until(async () => ((await front('getDbImgIdList', 1)) as number[]).includes(3), 60_000, () => out.slice(-3000));
    cluster.kill('SIGTERM');
    const code = await new Promise((resolve) => cluster.once('exit', resolve));
    expect(code).toBe(0);
    expect(processesUsing(hostB)).toEqual([]);
  });
});
