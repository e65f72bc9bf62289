import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { originalPath } from '../helpers/corpus.ts';
import { REPO_ROOT } from '../helpers/paths.ts';
import { type ServerProcess, keyedUrl, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';

const run = promisify(execFile);

describe("iskdaemon's API scenario with Python's xmlrpc.client", () => {
  const procs: ServerProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => stopProcess(p)));
  });

  it('passes every check through a reader (writes forwarded), then shuts the writer down', async () => {
    const dataDir = tempDataDir();
    const images = join(dataDir, 'images');
    mkdirSync(images);
    for (let n = 40; n < 46; n++) copyFileSync(originalPath(n), join(images, `${n}.jpg`));
    const writer = await startServerProcess('writer', dataDir);
    const reader = await startServerProcess('reader', dataDir, { writerUrl: writer.url });
    procs.push(writer, reader);
    const script = join(REPO_ROOT, 'test/e2e/iskdaemon_scenario.py');
    const result = await run('python3', [script, '--url', keyedUrl(reader.url), '--images', images, '--shutdown', keyedUrl(writer.url)]).catch((err) => err);
    const lines = String(result.stdout).trim().split('\n').map((l) => JSON.parse(l));
    const failed = lines.filter((l) => l.ok === false);
    expect(failed).toEqual([]);
    expect(lines.filter((l) => l.ok === true).length).toBeGreaterThan(40);
    expect(result.code ?? 0).toBe(0);
    // shutdownServer stops the writer gracefully.
    const exit = await Promise.race([writer.exited, sleep(10_000).then(() => null)]);
    expect(exit).toEqual({ code: 0, signal: null });
  });
});
