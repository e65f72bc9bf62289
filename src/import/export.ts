import type Database from 'better-sqlite3';
import { CHANNELS, COEFS_PER_CHANNEL, SIGNATURE_LENGTH } from '../signature/types.ts';
import { type ExportRow, SpaceExportReader, runReadTransaction, runTransactionAsync } from '../store/bulk-import.ts';
import { ImportError } from './errors.ts';
import { type IskForm, hashSetOrder } from './isk-format.ts';
import { type IskRecordOut, type IskSpaceSource, writeIskFile } from './isk-writer.ts';

export interface IskExportOptions {
  /** One space, written as savedb (saveDbAs); absent: every space, as savealldbs. */
  space?: number;
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

/** exportIsk in slices of at most sliceMs (one read transaction throughout). */
export function exportIskAsync(db: Database.Database, file: string, options: IskExportOptions = {}, sliceMs = 50): Promise<ExportSummary> {
  return runTransactionAsync(db, iskExportJob(db, file, options), sliceMs, 'read');
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
  const { bytes, images } = yield* writeIskFile(file, form, sources);
  return { file, format: form === 'savedb' ? 'isk-savedb' : 'isk-savealldbs', spaces, images, bytes };
}

function storeSource(reader: SpaceExportReader, dbId: number): IskSpaceSource {
  return {
    dbId,
    get ids() {
      return reader.ids(dbId);
    },
    signatures: () => reader.signatures(dbId),
    records: () => records(reader.rows(dbId)),
  };
}

function* records(rows: Iterable<ExportRow>): Generator<IskRecordOut> {
  const rec = { id: 0, width: 0, height: 0, avgl: new Float64Array(CHANNELS), coefs: new Int32Array(SIGNATURE_LENGTH), keywords: [] as number[] };
  const fileCoefs = new Int32Array(SIGNATURE_LENGTH);
  for (const [id, width, height, y, i, q, sig, keywords, fileSig, fileKeywords] of rows) {
    rec.id = id;
    rec.width = width;
    rec.height = height;
    rec.avgl[0] = y;
    rec.avgl[1] = i;
    rec.avgl[2] = q;
    unpackInt16(sig, rec.coefs);
    if (fileSig !== null && fileSig.byteLength === SIGNATURE_LENGTH * 2) {
      unpackInt16(fileSig, fileCoefs);
      if (samePerChannelSets(fileCoefs, rec.coefs)) rec.coefs.set(fileCoefs);
    }
    const stored = keywords === null ? [] : keywords.split(',').map(Number);
    let order: number[] | null = null;
    if (fileKeywords !== null) {
      const fromFile = unpackInt32(fileKeywords);
      if (sameSet(fromFile, stored)) order = fromFile;
    }
    rec.keywords = order ?? hashSetOrder(stored);
    yield rec;
  }
}

function unpackInt16(blob: Uint8Array, into: Int32Array): void {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  for (let k = 0; k < SIGNATURE_LENGTH; k++) into[k] = view.getInt16(k * 2, true);
}

function unpackInt32(blob: Uint8Array): number[] {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  return Array.from({ length: blob.byteLength >> 2 }, (_, k) => view.getInt32(k * 4, true));
}

/** Whether each channel of `file` holds the same coefficients as the sorted `stored`. */
function samePerChannelSets(file: Int32Array, stored: Int32Array): boolean {
  for (let c = 0; c < CHANNELS; c++) {
    const base = c * COEFS_PER_CHANNEL;
    const sorted = file.slice(base, base + COEFS_PER_CHANNEL).sort();
    for (let j = 0; j < COEFS_PER_CHANNEL; j++) if (sorted[j] !== stored[base + j]) return false;
  }
  return true;
}

function sameSet(a: number[], b: number[]): boolean {
  const sa = [...new Set(a)].sort((x, y) => x - y);
  const sb = [...new Set(b)].sort((x, y) => x - y);
  return sa.length === sb.length && sa.every((v, k) => v === sb[k]);
}
