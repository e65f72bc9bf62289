import type { Logger } from 'pino';
import type { Engine } from '../engine.ts';
import type { IndexCatalog } from '../index/catalog.ts';
import { LayeredIndex } from '../index/layered-index.ts';
import { type SegmentManifest, manifestIdentity, readManifest } from '../index/segment-manifest.ts';
import { segmentPath } from '../index/segment-writer.ts';
import type { SegmentIndex } from '../index/types.ts';
import type { Signature } from '../signature/types.ts';
import type { ChangeRow, StoreQueries } from '../store/queries.ts';

export interface IndexLoaderOptions {
  engine: Engine;
  catalog: IndexCatalog;
  /** Where the writer keeps the segment files and their manifest. */
  segmentDir: string;
  log: Logger;
}

export interface IndexLoad {
  /** The change-log position the indexes now match. */
  seq: number;
  /** The segment set's position, or null when every space came from the database. */
  segmentSeq: number | null;
  /** Spaces served from a segment plus delta. */
  fromSegments: number;
  /** Spaces read from the database (no usable segment). */
  fromDatabase: number;
  durationMs: number;
}

/**
 * Builds a process's indexes: every space whose segment file is usable is that file
 * mapped, plus a private delta replayed from the change log after the segment's
 * sequence; the other spaces are read from the database. SQLite stays the source of
 * truth: a missing, damaged, foreign or outdated segment only costs a slower load.
 * Runs synchronously, so requests see the old indexes or the new ones, never a mix.
 */
export class IndexLoader {
  private loadedIdentity = '';
  private refusedLogged = new Set<string>();
  /** The manifest of the segment set in use, null when none is. */
  current: SegmentManifest | null = null;

  constructor(private readonly o: IndexLoaderOptions) {}

  /** The position of the segment set in use, null when none is. */
  get segmentSeq(): number | null {
    return this.current?.seq ?? null;
  }

  /** True when the writer put a segment set in place after the one this process loaded. */
  newerSegments(): boolean {
    return manifestIdentity(this.o.segmentDir) !== this.loadedIdentity;
  }

  load(queries: StoreQueries): IndexLoad {
    const started = performance.now();
    const { catalog } = this.o;
    const identity = manifestIdentity(this.o.segmentDir);
    const manifest = identity ? readManifest(this.o.segmentDir) : null;
    const segments = manifest && this.matches(manifest, queries) ? this.openSegments(manifest, queries.spacesCreatedAt()) : new Map<number, SegmentIndex>();

    // The spaces without a segment are read from one snapshot (a space created since is
    // one of them); the others are installed over it.
    let dbSeq: number;
    try {
      dbSeq = catalog.reloadFrom(queries, { has: (dbId) => !segments.has(dbId) });
    } catch (err) {
      for (const seg of segments.values()) seg.close();
      throw err;
    }
    for (const [dbId, seg] of segments) {
      if (catalog.get(dbId) === undefined) seg.close(); // the space was dropped meanwhile
      else catalog.install(dbId, new LayeredIndex(seg, this.o.engine.createIndex()));
    }

    const base = (dbId: number) => segments.get(dbId)?.seq ?? dbSeq;
    let from = dbSeq;
    for (const seg of segments.values()) from = Math.min(from, seg.seq);
    const log = queries.changesSince(from);
    let seq: number;
    if (log === null) {
      // The log no longer reaches back to a segment (it should not happen: the writer trims only what segments cover).
      this.o.log.warn({ segmentSeq: from }, 'the change log does not reach back to the index segments; reading every space from the database');
      seq = catalog.reloadFrom(queries);
      segments.clear();
    } else {
      seq = Math.max(dbSeq, replayChanges(catalog, queries, log.changes.filter((c) => c.seq > base(c.dbId)), log.seq));
    }
    this.loadedIdentity = identity;
    this.current = segments.size > 0 ? manifest : null;
    return {
      seq,
      segmentSeq: segments.size > 0 ? manifest!.seq : null,
      fromSegments: segments.size,
      fromDatabase: catalog.ids().length - segments.size,
      durationMs: Math.round(performance.now() - started),
    };
  }

  /** A segment set belongs to this database when the log row it ends on is this database's row at that position. */
  private matches(m: SegmentManifest, queries: StoreQueries): boolean {
    const last = queries.lastSeq();
    const row = m.seq > 0 ? queries.changeAt(m.seq) : null;
    const same =
      m.seq <= last &&
      (m.at === null ? m.seq === 0 || row === null : row !== null && row.op === m.at.op && row.dbId === m.at.dbId && row.imageId === m.at.imageId);
    if (!same) this.refuseOnce(`manifest@${m.seq}`, { segmentSeq: m.seq, databaseSeq: last }, 'the index segments are of another database or history; reading from the database until the writer rewrites them');
    return same;
  }

  private openSegments(m: SegmentManifest, created: Map<number, number>): Map<number, SegmentIndex> {
    const opened = new Map<number, SegmentIndex>();
    for (const { dbId, createdAt } of m.spaces) {
      if (!created.has(dbId)) continue;
      const path = segmentPath(this.o.segmentDir, dbId);
      if (created.get(dbId) !== createdAt) {
        this.refuseOnce(`${path}@${m.seq}`, { path, dbId }, 'index segment is of another database\'s space; reading the space from the database');
        continue;
      }
      try {
        // The body's CRC too: about 40 ms per 200 MB, and a damaged file is then refused by every process.
        const seg = this.o.engine.openSegment(path, { verify: true });
        // A file newer than the manifest is the writer's next set, caught between its renames: as good.
        if (seg.dbId !== dbId || seg.seq < m.seq) {
          seg.close();
          this.refuseOnce(`${path}@${m.seq}`, { path, dbId: seg.dbId, seq: seg.seq, manifestSeq: m.seq }, 'index segment does not match its manifest; reading the space from the database');
          continue;
        }
        opened.set(dbId, seg);
      } catch (err) {
        this.refuseOnce(`${path}@${m.seq}`, { path, err: (err as Error).message }, 'index segment refused; reading the space from the database');
      }
    }
    return opened;
  }

  private refuseOnce(key: string, fields: object, msg: string): void {
    if (this.refusedLogged.has(key)) return;
    this.refusedLogged.add(key);
    this.o.log.warn(fields, msg);
  }
}

/**
 * Applies change-log rows to the indexes: each image to its current state (added,
 * replaced or removed), and every space changed wholesale reloaded from one snapshot.
 * Replaying a change twice is harmless, since each carries the image's current state.
 * Returns the position reached (`seq`, the log's end as read).
 */
export function replayChanges(catalog: IndexCatalog, queries: StoreQueries, changes: readonly ChangeRow[], seq: number): number {
  const reloadSpaces = new Set<number>();
  const images = new Map<string, { dbId: number; imageId: number; sig: Signature | null }>();
  for (const change of changes) {
    if (change.op === 'space') reloadSpaces.add(change.dbId);
    else images.set(`${change.dbId}:${change.imageId}`, change);
  }
  if (reloadSpaces.size > 0) catalog.reloadFrom(queries, reloadSpaces);
  for (const { dbId, imageId, sig } of images.values()) {
    if (reloadSpaces.has(dbId)) continue;
    if (sig) catalog.ensure(dbId).add(imageId, sig);
    else catalog.get(dbId)?.remove(imageId);
  }
  return seq;
}
