import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import Fastify from 'fastify';
import type { Logger } from 'pino';
import { loadEngine } from '../engine.ts';
import { WriterUnreachableError } from '../errors.ts';
import { IndexCatalog } from '../index/catalog.ts';
import { RpcDispatcher } from '../rpc/dispatch.ts';
import { FAULTS, Fault } from '../rpc/faults.ts';
import type { RpcContext } from '../rpc/methods.ts';
import { faultResponse } from '../rpc/wire.ts';
import { WriterStore } from '../store/writer-store.ts';
import { type ServerConfig, databasePath, savepointPath } from './config.ts';
import { ImageService } from './image-service.ts';
import { type LogRing } from './log.ts';
import { ReaderSync } from './reader-sync.ts';
import { acquireWriterLock } from './writer-lock.ts';

export interface RunningServer {
  close(): Promise<void>;
}

/** Starts a writer or a reader: storage, index, XML-RPC routes and /health. */
export async function startServer(config: ServerConfig, log: Logger, ring: LogRing, requestShutdown: () => void): Promise<RunningServer> {
  const engine = loadEngine(log);
  const catalog = new IndexCatalog(() => engine.createIndex());
  const dbPath = databasePath(config.dataDir);
  const allowedDirs = config.allowedDirs.map((d) => resolve(d));
  mkdirSync(config.dataDir, { recursive: true });

  let writer: WriterStore | undefined;
  let sync: ReaderSync | undefined;
  let releaseLock: (() => Promise<void>) | undefined;
  if (config.role === 'writer') {
    releaseLock = await acquireWriterLock(dbPath, config.port, (err) => {
      log.fatal({ err: err.message }, 'lost the writer lock; stopping so that no second writer can corrupt the database');
      process.exit(1);
    });
    writer = WriterStore.open(dbPath);
    catalog.reloadFrom(writer);
    log.info({ spaces: catalog.ids().length, images: catalog.imageCount(), engine: engine.name }, 'writer opened the database');
  } else {
    sync = new ReaderSync({ dbPath, catalog, log, retryBoundMs: config.refreshRetryMs, busyTimeoutMs: 100 });
  }

  const service = new ImageService({
    engine,
    catalog,
    queries: () => writer ?? sync!.store(),
    writer,
    decodeLimits: { maxInputBytes: config.maxBodyBytes, maxPixels: config.maxPixels },
    maxConcurrentDecodes: config.maxConcurrentDecodes,
    allowedDirs,
    savepointPath: savepointPath(config.dataDir),
    maxResults: config.maxResults,
  });
  const startedAt = Date.now();
  let requests = 0;
  const ctx: RpcContext = {
    service,
    serverStats: () => ({
      // iskdaemon's own keys first, so its clients find what they printed before.
      'isk-daemon uptime': `${Math.round((Date.now() - startedAt) / 1000)} s`,
      'Number of databases': catalog.ids().length,
      'Total memory usage': process.memoryUsage().heapTotal + process.memoryUsage().external,
      'Resident memory usage': process.memoryUsage().rss,
      role: config.role,
      engine: engine.name,
      pid: process.pid,
      port: config.port,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      requests,
      spaces: catalog.ids().length,
      images: catalog.imageCount(),
      indexBytes: catalog.memoryBytes(),
      rssBytes: process.memoryUsage().rss,
    }),
    recentLog: (lines) => ring.tail(lines),
    shutdown: () => setTimeout(requestShutdown, 50),
  };
  const dispatcher = new RpcDispatcher(ctx, {
    forwardWrite: config.role === 'reader' && config.forwardWrites && config.writerUrl ? forwarder(config.writerUrl, config.requestTimeoutMs) : undefined,
    refuseWrites:
      config.role === 'reader'
        ? `this reader does not accept write calls${config.writerUrl ? `; send them to the writer at ${config.writerUrl}` : ''}`
        : undefined,
    onInternalError: (err, method) => log.error({ err, method }, 'internal error'),
  });

  // Fastify's own per-request logging stays off; haarseek logs what matters itself.
  const app = Fastify({
    logger: false,
    bodyLimit: config.maxBodyBytes,
    requestTimeout: config.requestTimeoutMs,
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: { code?: string; message: string; statusCode?: number }, _req, reply) => {
    const tooLarge = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE';
    const fault = tooLarge
      ? new Fault(FAULTS.payloadTooLarge, `the request is larger than this server's limit of ${config.maxBodyBytes} bytes`)
      : new Fault(FAULTS.parseError, `bad request: ${err.message}`);
    if (!tooLarge && (err.statusCode ?? 500) >= 500) log.error({ err }, 'request failed');
    return reply.code(200).type('text/xml').send(faultResponse(fault));
  });

  const rpc = async (body: unknown) => {
    requests++;
    if (sync) await sync.ensureFresh();
    return dispatcher.handle(Buffer.isBuffer(body) ? body : Buffer.alloc(0));
  };
  for (const url of ['/RPC', '/RPC2', '/']) {
    app.post(url, async (req, reply) => reply.type('text/xml').send(await rpc(req.body)));
  }
  app.get('/health', async (_req, reply) => {
    if (sync) await sync.ensureFresh();
    const ready = config.role === 'writer' || sync!.ready;
    const lastRefresh = sync ? sync.lastRefreshAt : Date.now();
    return reply.code(ready ? 200 : 503).send({
      ok: ready,
      role: config.role,
      pid: process.pid,
      port: config.port,
      engine: engine.name,
      spaces: catalog.ids().length,
      images: catalog.imageCount(),
      lastRefresh: lastRefresh ? new Date(lastRefresh).toISOString() : null,
      snapshotAgeMs: lastRefresh ? Date.now() - lastRefresh : null,
      stale: sync?.stale ?? false,
      lastError: sync?.lastError ?? null,
      refreshes: sync?.refreshes,
      lastFullLoadMs: sync?.lastFullLoadMs,
    });
  });

  if (sync) await sync.ensureFresh();
  await app.listen({ host: config.host, port: config.port });
  log.info({ role: config.role, url: `http://${config.host}:${config.port}/RPC`, engine: engine.name, images: catalog.imageCount() }, 'listening');

  return {
    async close() {
      await app.close();
      sync?.close();
      writer?.close();
      await releaseLock?.();
    },
  };
}

/** Relays a write call's raw XML to the writer and its raw answer back. */
function forwarder(writerUrl: string, timeoutMs: number): (body: Buffer) => Promise<Buffer> {
  return async (body) => {
    let response: Response;
    try {
      response = await fetch(writerUrl, {
        method: 'POST',
        headers: { 'content-type': 'text/xml' },
        body: new Uint8Array(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new WriterUnreachableError(`the writer at ${writerUrl} did not answer (${(err as Error).message}); retry shortly`);
    }
    if (!response.ok) throw new WriterUnreachableError(`the writer at ${writerUrl} answered HTTP ${response.status}; retry shortly`);
    return Buffer.from(await response.arrayBuffer());
  };
}
