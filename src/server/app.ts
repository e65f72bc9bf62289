import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { loadEngine } from '../engine.ts';
import { BusyError, HaarseekError, PayloadTooLargeError, ProtocolError } from '../errors.ts';
import { IndexCatalog } from '../index/catalog.ts';
import { RpcDispatcher } from '../rpc/dispatch.ts';
import { toFault } from '../rpc/faults.ts';
import type { RpcContext } from '../rpc/methods.ts';
import { ParsePool } from '../rpc/parse-pool.ts';
import { faultResponse } from '../rpc/wire.ts';
import { createService } from '../service/service.ts';
import { WriterStore } from '../store/writer-store.ts';
import { Admission } from './admission.ts';
import { type ServerConfig, databasePath, protectedPaths, savepointPath, segmentDir } from './config.ts';
import { loadSharp } from '../image/decode.ts';
import { IndexLoader } from './index-loader.ts';
import { SegmentKeeper } from './segment-keeper.ts';
import { type LogRing } from './log.ts';
import { LoopDelayWindow } from './loop-delay.ts';
import { ServerMetrics } from './metrics.ts';
import { collectBody } from './body.ts';
import { writeForwarder } from './forward.ts';
import { ReaderSync } from './reader-sync.ts';
import { registerHttpDoors } from '../http/doors.ts';
import { jsonErrorBody } from '../http/errors.ts';
import { carriesKey } from './write-key.ts';
import { acquireWriterLock } from './writer-lock.ts';
import { ServerReplication } from '../replication/server-hooks.ts';

export interface RunningServer {
  close(): Promise<void>;
}

/** Paths that are not requests for work: never queued behind work, never refused as busy. */
const CONTROL_PATHS = new Set(['/health', '/metrics']);
/** Where XML-RPC is served (POST); every other path is a JSON door or the page. */
const RPC_PATHS = new Set(['/RPC', '/RPC2', '/']);
/** nginx marks what it proxies, so a full process answers it with 503 (nginx then tries another reader). */
const FRONT_HEADER = 'x-haarseek-front';

/** Starts a writer or a reader: storage, index, XML-RPC routes and /health. */
export async function startServer(config: ServerConfig, log: Logger, ring: LogRing, requestShutdown: () => void): Promise<RunningServer> {
  const engine = loadEngine(log);
  const catalog = new IndexCatalog(() => engine.createIndex());
  const dbPath = databasePath(config.dataDir);
  const allowedDirs = config.allowedDirs.map((d) => resolve(d));
  mkdirSync(config.dataDir, { recursive: true });
  const replication = new ServerReplication(config, dbPath, log);

  let writer: WriterStore | undefined;
  let sync: ReaderSync | undefined;
  let keeper: SegmentKeeper | undefined;
  let releaseLock: (() => Promise<void>) | undefined;
  const loader = new IndexLoader({ engine, catalog, segmentDir: segmentDir(config.dataDir), log });
  if (config.role === 'writer') {
    releaseLock = await acquireWriterLock(dbPath, config.port, (err) => {
      log.fatal({ err: err.message }, 'lost the writer lock; stopping so that no second writer can corrupt the database');
      process.exit(1);
    });
    const store = WriterStore.open(dbPath);
    writer = store;
    const load = loader.load(store);
    log.info({ spaces: catalog.ids().length, images: catalog.imageCount(), engine: engine.name, ...load }, 'writer opened the database');
    keeper = new SegmentKeeper({
      dbPath,
      dir: segmentDir(config.dataDir),
      store,
      segmentSeq: () => loader.segmentSeq,
      imagesOutside: () => catalog.imagesOutsideSegments(),
      deltaMax: config.segmentDeltaMax,
      log,
      onWritten: () => {
        // The writer's own indexes move onto the new files (its private copy goes), then the log rows they cover go.
        const switched = loader.load(store);
        const trimmed = store.coveredBySegments(switched.segmentSeq ?? 0);
        log.info({ ...switched, trimmedChanges: trimmed }, 'switched to the new index segments');
      },
    });
  } else {
    sync = new ReaderSync({ dbPath, catalog, loader, log, retryBoundMs: config.refreshRetryMs, busyTimeoutMs: 100 });
  }

  const service = createService({
    engine,
    catalog,
    queries: () => writer ?? sync!.store(),
    writer,
    decodeLimits: { maxInputBytes: config.maxBodyBytes, maxPixels: config.maxPixels },
    maxConcurrentDecodes: config.maxConcurrentDecodes,
    allowedDirs,
    savepointPath: savepointPath(config.dataDir),
    protectedPaths: protectedPaths(config.dataDir),
    maxResults: config.maxResults,
    maxSpaces: config.maxSpaces,
    observe: (stage, seconds) => metrics.observeStage(stage, seconds),
    ranking: config.ranking,
  });
  const startedAt = Date.now();
  const admission = new Admission(config.maxInFlight);
  const loopDelay = new LoopDelayWindow();
  const metrics = new ServerMetrics({ role: config.role, port: config.port }, { catalog, admission, sync, segmentSeq: () => loader.segmentSeq });
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
      segmentBytes: catalog.mappedBytes(),
      rssBytes: process.memoryUsage().rss,
    }),
    recentLog: (lines) => ring.tail(lines),
    shutdown: () => setTimeout(requestShutdown, 50),
  };
  const parser = new ParsePool(config.parseWorkers);
  const dispatcher = new RpcDispatcher(ctx, {
    parser,
    forwardWrite: config.role === 'reader' && config.forwardWrites && config.writerUrl ? writeForwarder(config.writerUrl, config.requestTimeoutMs, log) : undefined,
    refuseWrites:
      config.role === 'reader'
        ? `this reader does not accept write calls${config.follower ? ' (this host follows a writer on another host through NATS)' : ''}${config.writerUrl ? `; send them to the writer at ${config.writerUrl}` : config.follower ? '; send them to the writer host' : ''}`
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
  app.addContentTypeParser('*', (req, payload, done) => collectBody(payload, config.maxBodyBytes, done));

  const rpcFault = (reply: FastifyReply, err: HaarseekError, status = 200) => reply.code(status).type('text/xml').send(faultResponse(toFault(err).fault));
  app.setErrorHandler((err: { code?: string; message: string; statusCode?: number }, _req, reply) => {
    if (err instanceof HaarseekError) return rpcFault(reply, err);
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return rpcFault(reply, new PayloadTooLargeError(`the request is larger than this server's limit of ${config.maxBodyBytes} bytes`));
    }
    if ((err.statusCode ?? 500) >= 500) log.error({ err }, 'request failed');
    return rpcFault(reply, new ProtocolError(`bad request: ${err.message}`));
  });

  // Admission: a slot per request of work, taken before its body is read.
  const slots = new WeakMap<FastifyRequest, { release: () => void; held: boolean }>();
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (CONTROL_PATHS.has(req.url)) return;
    const release = admission.enter();
    if (!release) {
      log.warn({ inFlight: admission.current, limit: admission.limit }, 'busy: refused a request');
      const busy = new BusyError(`this server is busy (${admission.limit} requests in progress); retry shortly`);
      // Closing the connection spares reading (and discarding) a body that is not wanted.
      reply.header('connection', 'close');
      if (req.method !== 'POST' || !RPC_PATHS.has(req.url.split('?')[0])) return reply.code(503).header('retry-after', '1').send(jsonErrorBody(busy));
      return rpcFault(reply, busy, req.headers[FRONT_HEADER] ? 503 : 200);
    }
    // Normally the slot is freed when the answer is sent; a call answered at its
    // timeout keeps it until its work really ends, so stuck work still counts.
    const slot = { release, held: false };
    slots.set(req, slot);
    reply.raw.once('close', () => {
      if (!slot.held) release();
    });
  });

  const rpc = async (req: FastifyRequest, reply: FastifyReply) => {
    requests++;
    if (sync) await sync.ensureFresh();
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const authorization = req.headers.authorization;
    const caller = { authorized: carriesKey(authorization, config.writeKey), authorization };
    const finish = metrics.startCall('xmlrpc');
    const work = dispatcher.handle(body, caller).then((answer) => {
      finish(answer.method, answer.failure?.code ?? 'ok');
      if (answer.failure) log.info({ door: 'xmlrpc', method: answer.method, fault: answer.failure.fault, reason: answer.failure.message }, 'call failed');
      return answer.body;
    });
    const slot = slots.get(req);
    if (slot) {
      slot.held = true;
      void work.finally(slot.release);
    }
    const answer = await withTimeout(work, config.requestTimeoutMs, () => {
      log.warn({ timeoutMs: config.requestTimeoutMs }, 'a call ran past the request timeout; answered busy');
      return faultResponse(toFault(new BusyError(`the call did not finish within ${config.requestTimeoutMs} ms; retry later`)).fault);
    });
    return reply.type('text/xml').send(answer);
  };
  for (const url of RPC_PATHS) app.post(url, rpc);
  registerHttpDoors(app, {
    config,
    service,
    log,
    ensureFresh: async () => {
      if (sync) await sync.ensureFresh();
    },
    freshness: () => {
      const last = sync ? sync.lastRefreshAt : Date.now();
      return { stale: (sync?.stale ?? false) || replication.stale(), snapshotAgeMs: last ? Date.now() - last : null };
    },
    processStats: ctx.serverStats,
    startCall: (door) => metrics.startCall(door),
  });
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
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
      stale: (sync?.stale ?? false) || replication.stale(),
      lastError: sync?.lastError ?? null,
      inFlight: admission.current,
      maxInFlight: admission.limit,
      busyAnswers: admission.busyAnswers,
      eventLoopDelayMaxMs: loopDelay.maxMs(),
      refreshes: sync?.refreshes,
      lastFullLoadMs: sync?.lastFullLoadMs,
      segments: {
        seq: loader.segmentSeq,
        mappedBytes: catalog.mappedBytes(),
        privateIndexBytes: catalog.memoryBytes(),
        ...(keeper && { writing: keeper.writing, written: keeper.written, failed: keeper.failed, lastWriteMs: keeper.lastWriteMs, backlog: keeper.backlog() }),
      },
      ...replication.health(),
    });
  });

  if (sync) await sync.ensureFresh();
  await app.listen({ host: config.host, port: config.port });
  log.info({ url: `http://${config.host}:${config.port}/RPC`, engine: engine.name, images: catalog.imageCount() }, 'listening');
  // The decoder loads once the process serves: queries by id are answered meanwhile.
  setImmediate(() => void loadSharp().catch((err: Error) => log.error({ err: err.message }, 'the image decoder (sharp) could not be loaded; image calls will fail')));
  replication.registerMetrics(metrics.registry);
  if (writer) await replication.startPublisher(writer);

  return {
    async close() {
      await app.close();
      await parser.close();
      loopDelay.close();
      await keeper?.stop();
      sync?.close();
      await replication.close();
      writer?.close();
      await releaseLock?.();
    },
  };
}

/** The work's answer, or onTimeout's once the bound passes (the work itself runs on to its end). */
async function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
