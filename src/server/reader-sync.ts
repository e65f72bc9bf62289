import { statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { IndexCatalog } from '../index/catalog.ts';
import type { Signature } from '../signature/types.ts';
import { readChangeToken } from '../store/change-token.ts';
import { openReadOnly } from '../store/open.ts';
import { StoreQueries } from '../store/queries.ts';

export interface ReaderSyncOptions {
  dbPath: string;
  catalog: IndexCatalog;
  log: Logger;
  /** How long one refresh keeps retrying before answering from the last snapshot. */
  retryBoundMs: number;
  /** SQLite's own wait for a lock, per attempt. */
  busyTimeoutMs: number;
}

/**
 * Keeps a reader's in-memory indexes equal to the database file. `ensureFresh` runs
 * before every request: a cheap change-token check, then an incremental replay of the
 * change log (or a full reload when the log cannot bridge the gap), retried with
 * backoff; past the bound the reader answers from its last good snapshot, marked stale.
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
    if (token !== null && token === this.appliedToken && !this.stale) {
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
    const delta = this.seq < 0 ? null : queries.changesSince(this.seq);
    if (delta === null) {
      const started = Date.now();
      this.seq = this.o.catalog.reloadFrom(queries);
      this.refreshes.full++;
      this.lastFullLoadMs = Date.now() - started;
      this.o.log.info(
        { spaces: this.o.catalog.ids().length, images: this.o.catalog.imageCount(), seq: this.seq, durationMs: this.lastFullLoadMs },
        'loaded the full database',
      );
      return;
    }
    if (delta.changes.length === 0) return;
    const reloadSpaces = new Set<number>();
    const images = new Map<string, { dbId: number; imageId: number; sig: Signature | null }>();
    for (const change of delta.changes) {
      if (change.op === 'space') reloadSpaces.add(change.dbId);
      else images.set(`${change.dbId}:${change.imageId}`, change);
    }
    if (reloadSpaces.size > 0) {
      // Space-level changes (create, reset, remove, load) reload those spaces from one snapshot.
      // Later commits the snapshot may include are replayed again next time: harmless,
      // since every replayed change carries the image's current state.
      this.o.catalog.reloadFrom(queries, reloadSpaces);
      for (const { dbId, imageId, sig } of images.values()) {
        if (reloadSpaces.has(dbId)) continue;
        applyImage(this.o.catalog, dbId, imageId, sig);
      }
      this.seq = delta.seq;
    } else {
      for (const { dbId, imageId, sig } of images.values()) applyImage(this.o.catalog, dbId, imageId, sig);
      this.seq = delta.seq;
    }
    this.refreshes.incremental++;
  }
}

function applyImage(catalog: IndexCatalog, dbId: number, imageId: number, sig: Signature | null): void {
  if (sig) catalog.ensure(dbId).add(imageId, sig);
  else catalog.get(dbId)?.remove(imageId);
}

function isCorruption(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? '';
  return code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_IOERR');
}
