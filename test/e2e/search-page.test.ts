import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NGINX_INSTALLED, type ClusterProcess, startCluster, stopCluster } from '../helpers/cluster.ts';
import { original } from '../helpers/corpus.ts';
import { CORPUS_DIR, REPO_ROOT } from '../helpers/paths.ts';
import { AUTH_HEADER, freePort, tempDataDir } from '../helpers/server.ts';

/**
 * The search page in a real browser (Debian's Chromium, driven by playwright-core, which
 * never downloads a browser of its own) against a real cluster behind nginx: open /,
 * pick a space, upload a distorted corpus image, and see its original ranked first.
 */
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = join(REPO_ROOT, 'test-output', 'search-page.png');
const SEEDED = Array.from({ length: 20 }, (_, i) => 40 + i); // corpus originals 40..59: photos and drawings
const QUERY = { file: join(CORPUS_DIR, 'queries', '00046_half_q40.jpg'), expected: 46 };
const SPACE = 1;

const missing = !existsSync(CHROMIUM) ? `${CHROMIUM} is not installed (apt-get install chromium)` : !NGINX_INSTALLED ? 'nginx is not installed' : null;
if (missing) {
  if (process.env.CI === 'true') throw new Error(`the search page test cannot run in CI: ${missing}`);
  console.log(`search page test skipped: ${missing}`);
}

let cluster: ClusterProcess;
let front: string;
let thumbs: Server;
let browser: Browser;

describe.skipIf(missing !== null)('search page in Chromium against a cluster', () => {
  beforeAll(async () => {
    // Thumbnails come from the operator's image host; here a tiny server of the corpus originals.
    const thumbPort = await freePort();
    thumbs = createServer((req, res) => {
      const id = /^\/(\d+)\.jpg$/.exec(req.url ?? '')?.[1];
      if (!id || !SEEDED.includes(Number(id))) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'image/jpeg' }).end(original(Number(id)));
    });
    await new Promise<void>((resolve) => thumbs.listen(thumbPort, '127.0.0.1', resolve));

    cluster = await startCluster(tempDataDir('haarseek-page-'), {
      readers: 2,
      extraArgs: [`--serve-arg=--image-url-template=http://127.0.0.1:${thumbPort}/{id}.jpg`],
    });
    front = new URL(cluster.frontUrl).origin;
    // Seeded through the front's JSON API: the readers relay each write to the writer.
    for (const id of SEEDED) {
      const res = await fetch(`${front}/api/v1/spaces/${SPACE}/images/${id}`, {
        method: 'PUT',
        body: new Uint8Array(original(id)),
        headers: { authorization: AUTH_HEADER, 'content-type': 'image/jpeg' },
      });
      expect(res.status, await res.text()).toBe(200);
    }
    // A second, empty space, so that picking the space matters.
    expect((await fetch(`${front}/api/v1/spaces/2`, { method: 'PUT', headers: { authorization: AUTH_HEADER } })).status).toBe(200);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await stopCluster(cluster);
    await new Promise((resolve) => thumbs?.close(resolve));
  });

  it('finds the original of an uploaded photo and shows the space\'s image count', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 960 } });
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/favicon/.test(msg.location().url)) problems.push(`console: ${msg.text()} (${msg.location().url})`);
    });

    await page.goto(`${front}/`);
    await page.waitForSelector(`#status tr[data-space="${SPACE}"]`);
    expect((await page.textContent(`#status tr[data-space="${SPACE}"] td.num`))?.trim()).toBe(String(SEEDED.length));
    expect((await page.textContent('#status [data-field="role"]'))?.trim()).toBe('reader');

    await page.selectOption('#space', String(SPACE));
    await page.setInputFiles('#file', { name: '00046_half_q40.jpg', mimeType: 'image/jpeg', buffer: readFileSync(QUERY.file) });
    await page.waitForSelector('#results li[data-id]');
    const ids = await page.$$eval('#results li[data-id]', (items) => items.map((li) => Number((li as HTMLElement).dataset.id)));
    expect(ids[0]).toBe(QUERY.expected);
    expect(ids).toHaveLength(10);
    expect(await page.textContent('#results-summary')).toMatch(/10 results from space 1/);
    expect(await page.isHidden('#error')).toBe(true);

    // Thumbnails from the URL template, loaded before the picture is taken.
    await page.waitForFunction(() => [...document.querySelectorAll<HTMLImageElement>('#results img.thumb')].every((img) => img.complete && img.naturalWidth > 0));
    expect(await page.getAttribute('#results li[data-id] img.thumb', 'src')).toMatch(new RegExp(`/${QUERY.expected}\\.jpg$`));

    mkdirSync(join(REPO_ROOT, 'test-output'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`search page screenshot: ${SCREENSHOT}`);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows the API\'s message when the upload is not an image', async () => {
    const page = await browser.newPage();
    await page.goto(`${front}/`);
    await page.waitForSelector(`#status tr[data-space="${SPACE}"]`);
    await page.selectOption('#space', String(SPACE));
    await page.setInputFiles('#file', { name: 'notes.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('this is text, not a picture') });
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.getAttribute('#error', 'data-code')).toBe('undecodableImage');
    expect(await page.textContent('#error')).toMatch(/could not be decoded/);
    await page.close();
  });
});
