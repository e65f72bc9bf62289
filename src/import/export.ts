import type Database from 'better-sqlite3';
import { CHANNELS, SIGNATURE_LENGTH } from '../signature/types.ts';
import { type ExportRow, type SliceOptions, SpaceExportReader, runReadTransaction, runTransactionAsync } from '../store/bulk-import.ts';
import { ImportError } from './errors.ts';
import { FileOrderLookup, applyRanks } from './file-order.ts';
import { type IskForm, hashSetOrder } from './isk-format.ts';
import { type IskRecordOut, type IskSpaceSource, writeIskFile } from './isk-writer.ts';

export interface IskExportOptions {
  /** One space, written as savedb (saveDbAs); absent: every space, as savealldbs. */
  space?: number;
  /** Bucket entries held at once while writing (default 16M, 64 MB); tests make it small. */
  entryBudget?: number;
  /** Largest space (240 bytes an image) whose signatures are read once and kept (default 256 MB). */
  cacheBytes?: number;
}

export interface ExportSummary {
  file: string;
  format: 'isk-savealldbs' | 'isk-savedb';
  spaces: number[];
  images: number;
  bytes: number;
}

/**
 * Writes a file iskdaemon 0.9.5 loads: savedb (loadDb) for one space, savealldbs
 * (loadAllDbs) for all, from one consistent read of the database. Spaces imported
 * from an iskdaemon file come back byte for byte; other images list their coefficients
 * in haarseek's (ascending) order and their keywords in iskdaemon's hash-set order.
 */
export function exportIsk(db: Database.Database, file: string, options: IskExportOptions = {}): ExportSummary {
  return runReadTransaction(db, iskExportJob(db, file, options));
}

/** exportIsk in slices (one read transaction throughout); aborting removes the partial file. */
export function exportIskAsync(db: Database.Database, file: string, options: IskExportOptions = {}, slices: SliceOptions = {}): Promise<ExportSummary> {
  return runTransactionAsync(db, iskExportJob(db, file, options), slices, 'read');
}

export function* iskExportJob(db: Database.Database, file: string, options: IskExportOptions): Generator<void, ExportSummary> {
  const reader = new SpaceExportReader(db);
  const known = reader.spaceIds();
  let spaces: number[];
  let form: IskForm;
  if (options.space === undefined) {
    spaces = known;
    form = 'savealldbs';
  } else {
    if (!known.includes(options.space)) {
      throw new ImportError('space', `database space ${options.space} does not exist (spaces: ${known.join(', ') || 'none'})`);
    }
    spaces = [options.space];
    form = 'savedb';
  }
  const sources = spaces.map((dbId) => storeSource(reader, dbId));
  const { bytes, images } = yield* writeIskFile(file, form, sources, { entryBudget: options.entryBudget, cacheBytes: options.cacheBytes });
  return { file, format: form === 'savedb' ? 'isk-savedb' : 'isk-savealldbs', spaces, images, bytes };
}

function storeSource(reader: SpaceExportReader, dbId: number): IskSpaceSource {
  return {
    dbId,
    get ids() {
      return reader.ids(dbId);
    },
    signatures: () => reader.signatures(dbId),
    records: () => records(reader.rows(dbId), new FileOrderLookup(reader.fileOrderChunks(dbId))),
  };
}

function* records(rows: Iterable<ExportRow>, order: FileOrderLookup): Generator<IskRecordOut> {
  const rec = { id: 0, width: 0, height: 0, avgl: new Float64Array(CHANNELS), coefs: new Int32Array(SIGNATURE_LENGTH), keywords: [] as number[] };
  const sorted = new Int32Array(SIGNATURE_LENGTH);
  try {
    for (const [id, width, height, y, i, q, sig, keywords] of rows) {
      rec.id = id;
      rec.width = width;
      rec.height = height;
      rec.avgl[0] = y;
      rec.avgl[1] = i;
      rec.avgl[2] = q;
      unpackInt16(sig, sorted);
      const entry = order.find(id, sorted);
      if (entry?.ranks) applyRanks(sorted, entry.ranks, rec.coefs);
      else rec.coefs.set(sorted);
      const stored = keywords === null ? [] : keywords.split(',').map(Number);
      const fromFile = entry?.keywords ? Array.from(entry.keywords) : null;
      rec.keywords = fromFile && sameSet(fromFile, stored) ? fromFile : hashSetOrder(stored);
      yield rec;
    }
  } finally {
    order.close();
  }
}

function unpackInt16(blob: Uint8Array, into: Int32Array): void {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  for (let k = 0; k < SIGNATURE_LENGTH; k++) into[k] = view.getInt16(k * 2, true);
}

function sameSet(a: number[], b: number[]): boolean {
  const sa = [...new Set(a)].sort((x, y) => x - y);
  const sb = [...new Set(b)].sort((x, y) => x - y);
  return sa.length === sb.length && sa.every((v, k) => v === sb[k]);
}
