import { availableParallelism } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { DEFAULT_DECODE_LIMITS } from '../image/limits.ts';
import type { Ranking } from '../service/context.ts';

export interface ServerConfig {
  role: 'writer' | 'reader';
  dataDir: string;
  host: string;
  port: number;
  /** Reader: the writer's XML-RPC URL, for forwarding write calls. */
  writerUrl?: string;
  forwardWrites: boolean;
  allowedDirs: string[];
  logLevel: string;
  maxBodyBytes: number;
  maxPixels: number;
  maxConcurrentDecodes: number;
  maxResults: number;
  requestTimeoutMs: number;
  /** Reader: how long a refresh retries before answering stale. */
  refreshRetryMs: number;
  /** The key write and admin calls must carry. */
  writeKey: string;
  /** Requests one process holds at once; past it, an immediate "busy". */
  maxInFlight: number;
  /** Database spaces one server holds at most. */
  maxSpaces: number;
  /** Worker threads that parse large XML-RPC bodies off the event loop. */
  parseWorkers: number;
  /** Where the search page finds an image by id (`{id}` is replaced), e.g. https://img.example/{id}.jpg; null: no thumbnails. */
  imageUrlTemplate: string | null;
  /** The database space the iqdb-compatible routes (/images/:id, /query, /status) work on. */
  iqdbSpace: number;
  /** How image queries are ranked when a call names no ranking. */
  ranking: Ranking;
  /** The writer writes a new index segment set past this many changes after the current one. */
  segmentDeltaMax: number;
  /** Writer: publish the change log to NATS JetStream (--nats); absent: SQLite only, nothing else changes. */
  nats?: { servers: string[]; name: string; replicas: number; snapshotIntervalMs: number; snapshotEveryChanges: number };
  /** Reader on a host fed by a replica (cluster --follow): no writer on this host. */
  follower?: boolean;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  writerPort: 31127,
  frontPort: 31128,
  readerBasePort: 31130,
  dataDir: './data',
  logLevel: 'info',
  // base64 inflates by 4/3, so a 40 MiB image fits in a request of this size.
  maxBodyBytes: 64 * 1024 * 1024,
  maxPixels: DEFAULT_DECODE_LIMITS.maxPixels,
  maxConcurrentDecodes: Math.max(2, availableParallelism()),
  maxResults: 1000,
  requestTimeoutMs: 60_000,
  refreshRetryMs: 2_000,
  maxInFlight: 128,
  maxSpaces: 1000,
  parseWorkers: 1,
  iqdbSpace: 1,
  ranking: 'verified' as Ranking,
  segmentDeltaMax: 10_000,
};

export function databasePath(dataDir: string): string {
  return join(resolve(dataDir), 'haarseek.db');
}

export function savepointPath(dataDir: string): string {
  return join(resolve(dataDir), 'haarseek.savepoint.db');
}

/** Where the writer keeps the index segment files (src/index/segment-writer.ts) and their manifest. */
export function segmentDir(dataDir: string): string {
  return join(resolve(dataDir), 'segments');
}

/**
 * The files a server runs on: no client-named save, load or export path may be one of
 * them. The journal variants cover every SQLite mode; the lock is proper-lockfile's.
 */
export function protectedPaths(dataDir: string): string[] {
  const db = databasePath(dataDir);
  return [
    db,
    `${db}-journal`,
    `${db}-wal`,
    `${db}-shm`,
    `${db}.lock`,
    `${db}.writer.json`,
    savepointPath(dataDir),
    `${savepointPath(dataDir)}-journal`,
    join(resolve(dataDir), 'cluster.lock'),
    join(resolve(dataDir), 'write.key'),
    segmentDir(dataDir) + sep,
  ];
}
