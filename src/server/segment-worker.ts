/**
 * Writes a new segment set off the writer's event loop (src/server/segment-keeper.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { writeSegmentSet } from './segment-set.ts';

export interface SegmentJob {
  dbPath: string;
  dir: string;
}

const { dbPath, dir } = workerData as SegmentJob;
parentPort!.postMessage(writeSegmentSet(dbPath, dir));
