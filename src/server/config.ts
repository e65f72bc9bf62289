import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_DECODE_LIMITS } from '../image/decode.ts';

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
}

export const DEFAULTS = {
  host: '127.0.0.1',
  writerPort: 31127,
  frontPort: 31128,
  readerBasePort: 31130,
  dataDir: './data',
  logLevel: 'info',
  // base64 inflates by 4/3, so a 32 MiB image fits in a request of this size.
  maxBodyBytes: 48 * 1024 * 1024,
  maxPixels: DEFAULT_DECODE_LIMITS.maxPixels,
  maxConcurrentDecodes: Math.max(2, availableParallelism()),
  maxResults: 1000,
  requestTimeoutMs: 60_000,
  refreshRetryMs: 2_000,
};

export function databasePath(dataDir: string): string {
  return join(resolve(dataDir), 'haarseek.db');
}

export function savepointPath(dataDir: string): string {
  return join(resolve(dataDir), 'haarseek.savepoint.db');
}
