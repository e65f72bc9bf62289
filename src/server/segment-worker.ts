/**
 * Writes a new segment set off the writer's event loop (src/server/segment-keeper.ts):
 * its own read-only connection scans the database in short transactions, so the
 * writer keeps committing meanwhile; the files and then the manifest are put in place
 * atomically.
 */
import { mkdirSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { writeManifest } from '../index/segment-manifest.ts';
import { writeSnapshotSegments } from '../index/segment-writer.ts';
import { openReadOnly } from '../store/open.ts';
import { StoreQueries } from '../store/queries.ts';

export interface SegmentJob {
  dbPath: string;
  dir: string;
}

export interface SegmentJobResult {
  seq: number;
  images: number;
  bytes: number;
  spaces: number;
}

const { dbPath, dir } = workerData as SegmentJob;
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
  const result: SegmentJobResult = {
    seq,
    images: segments.reduce((n, s) => n + s.count, 0),
    bytes: segments.reduce((n, s) => n + s.bytes, 0),
    spaces: segments.length,
  };
  parentPort!.postMessage(result);
} finally {
  db.close();
}
