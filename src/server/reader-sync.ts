import { statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { IndexCatalog } from '../index/catalog.ts';
import { readChangeToken } from '../store/change-token.ts';
import { openReadOnly } from '../store/open.ts';
import { StoreQueries } from '../store/queries.ts';
import { type IndexLoader, replayChanges } from './index-loader.ts';

export interface ReaderSyncOptions {
  dbPath: string;
  catalog: IndexCatalog;
  /** Builds the indexes from the newest segment set plus the log (or from the database alone). */
  loader: IndexLoader;
  log: Logger;
  /** How long one refresh keeps retrying before answering from the last snapshot. */
  retryBoundMs: number;
  /** SQLite's own wait for a lock, per attempt. */
  busyTimeoutMs: number;
}

/**
 * Keeps a reader's indexes equal to the database file. `ensureFresh` runs before every
 * request: a cheap change-token check (and one stat of the segment manifest), then an
 * incremental replay of the change log, or a new load (newest segments plus the log
 * after them) when the writer put new segments in place or the log cannot bridge the
 * gap; retried with backoff; past the bound the reader answers from its last good
 * state, marked stale.
 */
export class ReaderSync {
  private db: Database.Database | null = null;
  private queries: StoreQueries | null = null;
  private openedToken: string | null = null;
  private appliedToken: string | null = null;
  private seq = -1;
  private inflight: Promise<void> | null = null;
  stale = false;
  /** When the index was last known to equal the database. */
  lastRefreshAt = 0;
  lastError: string | null = null;
  refreshes = { incremental: 0, full: 0, failed: 0 };
  lastFullLoadMs: number | null = null;

  constructor(private readonly o: ReaderSyncOptions) {}

  get ready(): boolean {
    return this.seq >= 0;
  }

  /**
   * How far the index is behind the writer's last commit, without refreshing: changes
   * not applied yet, and how long ago the file last changed when there are any.
   */
  lag(): { changes: number; ms: number } {
    try {
      const behind = Math.max(0, this.store().lastSeq() - Math.max(0, this.seq));
      return { changes: behind, ms: behind > 0 ? Math.max(0, Date.now() - statSync(this.o.dbPath).mtimeMs) : 0 };
    } catch {
      return { changes: 0, ms: this.lastRefreshAt ? Date.now() - this.lastRefreshAt : 0 };
    }
  }

  /** Store queries on the current connection (opens it if needed). */
  store(): StoreQueries {
    if (!this.queries) this.open();
    return this.queries!;
  }

  async ensureFresh(): Promise<void> {
    const token = readChangeToken(this.o.dbPath);
    if (token !== null && token === this.appliedToken && !this.stale && !this.o.loader.newerSegments()) {
      this.lastRefreshAt = Date.now();
      return;
    }
    this.inflight ??= this.refresh().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  close(): void {
    this.db?.close();
    this.db = null;
    this.queries = null;
  }

  private async refresh(): Promise<void> {
    const started = Date.now();
    let delay = 5;
    for (let attempt = 1; ; attempt++) {
      const token = readChangeToken(this.o.dbPath);
      try {
        if (token === null) throw new Error(`${this.o.dbPath} does not exist yet`);
        this.apply(token);
        this.appliedToken = token;
        if (this.stale) this.o.log.info({ attempt }, 'caught up with the database; no longer stale');
        this.stale = false;
        this.lastError = null;
        this.lastRefreshAt = Date.now();
        return;
      } catch (err) {
        this.lastError = (err as Error).message;
        if (isCorruption(err)) this.close();
        if (Date.now() - started + delay > this.o.retryBoundMs) {
          this.refreshes.failed++;
          if (!this.stale) {
            this.o.log.warn({ err: this.lastError, attempts: attempt }, 'refresh failed past the retry bound; answering from the last snapshot (stale)');
          }
          this.stale = true;
          return;
        }
        await sleep(delay);
        delay = Math.min(delay * 2, 200);
      }
    }
  }

  private open(): void {
    this.close();
    this.db = openReadOnly(this.o.dbPath, this.o.busyTimeoutMs);
    this.queries = new StoreQueries(this.db);
  }

  private apply(token: string): void {
    const identity = token.split(':').slice(0, 2).join(':');
    if (!this.queries || this.openedToken !== identity) {
      // A new file at the path (restored from a backup): reopen and reload.
      this.open();
      this.openedToken = identity;
      this.seq = -1;
    }
    const queries = this.queries!;
    const delta = this.seq < 0 || this.o.loader.newerSegments() ? null : queries.changesSince(this.seq);
    if (delta === null) {
      const load = this.o.loader.load(queries);
      this.seq = load.seq;
      this.refreshes.full++;
      this.lastFullLoadMs = load.durationMs;
      this.o.log.info(
        { spaces: this.o.catalog.ids().length, images: this.o.catalog.imageCount(), ...load },
        load.segmentSeq === null ? 'loaded the full database' : 'loaded the index segments and the changes after them',
      );
      return;
    }
    if (delta.changes.length === 0) return;
    this.seq = replayChanges(this.o.catalog, queries, delta.changes, delta.seq);
    this.refreshes.incremental++;
  }
}

function isCorruption(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? '';
  return code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_IOERR');
}
