import { mkdirSync } from 'node:fs';
import { writeManifest } from '../index/segment-manifest.ts';
import { writeSnapshotSegments } from '../index/segment-writer.ts';
import { openReadOnly } from '../store/open.ts';
import { StoreQueries } from '../store/queries.ts';
import { WriterStore } from '../store/writer-store.ts';

export interface SegmentSetResult {
  seq: number;
  images: number;
  bytes: number;
  spaces: number;
}

/**
 * Writes a new segment set of the database into dir: every space's file, then the
 * manifest that makes readers take them. Reads in short transactions (StoreQueries.scan),
 * so a writer on another connection keeps committing meanwhile.
 */
export function writeSegmentSet(dbPath: string, dir: string): SegmentSetResult {
  const db = openReadOnly(dbPath, 30_000);
  try {
    const queries = new StoreQueries(db);
    mkdirSync(dir, { recursive: true });
    const { seq, segments } = writeSnapshotSegments({ snapshot: (only, load) => queries.scan(only, load) }, dir);
    // A space dropped and created again after the scan began has a 'space' change after seq: readers reload it whatever this says.
    const created = queries.spacesCreatedAt();
    writeManifest(dir, {
      format: 1,
      seq,
      at: seq > 0 ? queries.changeAt(seq) : null,
      spaces: segments.filter((s) => created.has(s.dbId)).map((s) => ({ dbId: s.dbId, createdAt: created.get(s.dbId)!, count: s.count, bytes: s.bytes })),
      writtenAt: new Date().toISOString(),
    });
    return {
      seq,
      images: segments.reduce((n, s) => n + s.count, 0),
      bytes: segments.reduce((n, s) => n + s.bytes, 0),
      spaces: segments.length,
    };
  } finally {
    db.close();
  }
}

/**
 * After an offline bulk load (import, add --data), while the caller holds the writer
 * lock: a segment set for the next start (which then maps it instead of reading
 * SQLite), and the change log trimmed to what it covers.
 */
export function writeSegmentSetOffline(dbPath: string, dir: string): SegmentSetResult {
  const result = writeSegmentSet(dbPath, dir);
  const store = WriterStore.open(dbPath);
  try {
    store.coveredBySegments(result.seq);
  } finally {
    store.close();
  }
  return result;
}
