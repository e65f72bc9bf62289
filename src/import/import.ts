import { closeSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import type Database from 'better-sqlite3';
import { SIGNATURE_LENGTH } from '../signature/types.ts';
import { type BulkImage, BulkImportWriter, type SliceOptions, runTransaction, runTransactionAsync } from '../store/bulk-import.ts';
import { ImportError } from './errors.ts';
import { IqdbFile } from './iqdb-reader.ts';
import { FileOrderRecorder } from './file-order.ts';
import { hashSetOrder } from './isk-format.ts';
import { type IskImage, type IskSpaceInfo, parseIskFile, readIskHeader } from './isk-reader.ts';

export interface IskImportOptions {
  /**
   * savedb file (one space, no id of its own): the space to load it into; required.
   * savealldbs file: load only this space, from the file's space of that id or, when the
   * file holds a single space, from that one. Absent: every space of the file.
   */
  space?: number;
  /**
   * Remember the file's coefficient and keyword order so an export gives back the same
   * bytes (default true; costs up to 240 bytes per image).
   */
  keepFileOrder?: boolean;
}

export interface IqdbImportOptions {
  /** The space the iqdb database goes into (iqdb has a single one). */
  space: number;
}

export interface ImportedSpace {
  /** The haarseek space written. */
  dbId: number;
  /** The space id in the file (null: a savedb or iqdb file, which have none). */
  fromSpace: number | null;
  images: number;
  keywords: number;
  /** Images the space held before (all replaced). */
  replaced: number;
}

export interface ImportSummary {
  file: string;
  format: 'isk-savealldbs' | 'isk-savedb' | 'iqdb';
  /** Spaces replaced with the file's content, ascending. */
  spaces: ImportedSpace[];
  /** Spaces of the file that were read and checked but not imported (space option). */
  skipped: number[];
}

/**
 * Loads an iskdaemon 0.5.1 .. 0.9.5 database file (savealldbs or savedb form) into a
 * haarseek database, as iskdaemon's loadAllDbs/loadDb do: each space in the file
 * replaces the space of the same id (spaces not in the file are kept). The whole file
 * is checked and written in one transaction; an ImportError leaves `db` unchanged.
 * Synchronous: a million images take a few seconds (use importIskAsync in a server).
 */
export function importIsk(db: Database.Database, file: string, options: IskImportOptions = {}): ImportSummary {
  return runTransaction(db, iskImportJob(db, file, options));
}

/**
 * importIsk in slices (default at most 50 ms of work per event-loop turn), so a server
 * stays responsive; nothing else may use the connection until it settles. Aborting the
 * signal rolls the import back.
 */
export function importIskAsync(db: Database.Database, file: string, options: IskImportOptions = {}, slices: SliceOptions = {}): Promise<ImportSummary> {
  return runTransactionAsync(db, iskImportJob(db, file, options), slices);
}

/** Loads danbooru/iqdb's iqdb.sqlite into one space (replacing it), in one transaction. */
export function importIqdb(db: Database.Database, file: string, options: IqdbImportOptions): ImportSummary {
  return runTransaction(db, iqdbImportJob(db, file, options));
}

export function importIqdbAsync(db: Database.Database, file: string, options: IqdbImportOptions, slices: SliceOptions = {}): Promise<ImportSummary> {
  return runTransactionAsync(db, iqdbImportJob(db, file, options), slices);
}

/** The import as steps (yielding between batches), to run inside a write transaction. */
export function* iskImportJob(db: Database.Database, file: string, options: IskImportOptions): Generator<void, ImportSummary> {
  const target = options.space;
  if (target !== undefined) checkSpaceId(target);
  const keepOrder = options.keepFileOrder ?? true;
  const { form } = readIskHeader(file);
  if (form === 'savedb' && target === undefined) {
    throw new ImportError(
      'space',
      `${file} is a single-space iskdaemon file (savedb/saveDbAs), which does not record its space id: say which space to load it into (--space N, or loadDb(N, file))`,
    );
  }
  const writer = new BulkImportWriter(db);
  const spaces: ImportedSpace[] = [];
  const skipped: number[] = [];
  const fileSpaces: number[] = [];
  let current: ImportedSpace | null = null;
  const packed = new SignaturePacker();
  const bulk: BulkImage = { imageId: 0, width: 0, height: 0, avgl: new Float64Array(3), sig: packed.blob, keywords: [] };
  let order: FileOrderRecorder | null = null;
  let spaceCount = -1;
  const pick = (info: IskSpaceInfo): number | null => {
    if (info.dbId === null) return target!;
    if (target === undefined) return info.dbId;
    if (info.dbId === target || spaceCount === 1) return target;
    return null;
  };

  const summary = yield* parseIskFile(file, {
    space(info) {
      if (spaceCount < 0) spaceCount = info.spaceCount;
      if (info.dbId !== null) fileSpaces.push(info.dbId);
      const dbId = pick(info);
      if (dbId === null) {
        skipped.push(info.dbId!);
        current = null;
        return false;
      }
      checkSpaceId(dbId);
      current = { dbId, fromSpace: info.dbId, images: 0, keywords: 0, replaced: writer.replaceSpace(dbId) };
      spaces.push(current);
      order = keepOrder ? new FileOrderRecorder((firstId, chunk) => writer.putFileOrder(dbId, firstId, chunk)) : null;
      return true;
    },
    image(image: IskImage) {
      const space = current!;
      bulk.imageId = image.id;
      bulk.width = image.width;
      bulk.height = image.height;
      bulk.avgl = image.avgl;
      packed.pack(image.coefs);
      bulk.keywords = image.keywords;
      writer.put(space.dbId, bulk);
      if (order) {
        const ranks = image.sortedInFile ? null : image.ranks;
        const keywords = image.keywords.length > 1 && !sameOrder(image.keywords, hashSetOrder(image.keywords)) ? image.keywords : null;
        if (ranks || keywords) order.add(image.id, image.coefs, ranks, keywords);
      }
      space.images++;
      space.keywords += image.keywords.length;
    },
    endSpace() {
      order?.flush();
      order = null;
      current = null;
    },
  });
  if (target !== undefined && spaces.length === 0) {
    throw new ImportError(
      'space',
      fileSpaces.length === 0
        ? `${file} holds no database space at all (an empty savealldbs file); there is no space ${target} to load`
        : `${file} holds database space${fileSpaces.length === 1 ? '' : 's'} ${fileSpaces.join(', ')}; none is space ${target}`,
    );
  }
  writer.finish();
  return {
    file,
    format: summary.form === 'savedb' ? 'isk-savedb' : 'isk-savealldbs',
    spaces: spaces.sort((a, b) => a.dbId - b.dbId),
    skipped,
  };
}

export function* iqdbImportJob(db: Database.Database, file: string, options: IqdbImportOptions): Generator<void, ImportSummary> {
  checkSpaceId(options.space);
  const source = IqdbFile.open(file);
  try {
    const writer = new BulkImportWriter(db);
    const space: ImportedSpace = { dbId: options.space, fromSpace: null, images: 0, keywords: 0, replaced: writer.replaceSpace(options.space) };
    const packed = new SignaturePacker();
    const bulk: BulkImage = { imageId: 0, width: 0, height: 0, avgl: new Float64Array(3), sig: packed.blob, keywords: [] };
    let previous = 0;
    for (const image of source.images()) {
      // post_id is UNIQUE in iqdb's schema; a file edited by hand might not say so.
      if (image.postId === previous) throw new ImportError('damaged', `${file}: post ${image.postId} appears twice`);
      previous = image.postId;
      bulk.imageId = image.postId;
      bulk.avgl = image.avgl;
      packed.pack(image.coefs);
      writer.put(options.space, bulk);
      if (++space.images % 2048 === 0) yield;
    }
    writer.finish();
    return { file, format: 'iqdb', spaces: [space], skipped: [] };
  } finally {
    source.close();
  }
}

/**
 * What kind of database file `path` is, from its first bytes: 'sqlite' (haarseek's own
 * saved files, or iqdb's), 'isk' (an iskdaemon file with its header: savealldbs or
 * savedb), or null. For loadDb/loadAllDbs to pick restoreFrom or importIsk.
 */
export function sniffDatabaseFile(path: string): 'sqlite' | 'isk' | null {
  const head = Buffer.alloc(16);
  const fd = openSync(path, 'r');
  let got: number;
  try {
    got = readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (got === 16 && head.toString('latin1') === 'SQLite format 3\0') return 'sqlite';
  if (got >= 8 && head.readInt32LE(0) === 1 && head.readInt32LE(4) >= 1 && head.readInt32LE(4) <= 3) return 'isk';
  return null;
}

function checkSpaceId(dbId: number): void {
  if (!Number.isSafeInteger(dbId) || dbId < -0x80000000 || dbId > 0x7fffffff) {
    throw new ImportError('space', `database space id ${dbId} is not a 32-bit whole number (iskdaemon's space ids are C ints)`);
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** 120 coefficients as the 240-byte int16 LE blob the writer stores; one reused buffer (SQLite copies it). */
class SignaturePacker {
  private readonly words = new Int16Array(SIGNATURE_LENGTH);
  readonly blob = Buffer.from(this.words.buffer);

  pack(coefs: Int32Array): void {
    if (LITTLE_ENDIAN) this.words.set(coefs);
    else for (let k = 0; k < coefs.length; k++) this.blob.writeInt16LE(coefs[k], k * 2);
  }
}

function sameOrder(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

export function describeSummary(summary: ImportSummary): string[] {
  const name = basename(summary.file);
  const lines = summary.spaces.map(
    (s) =>
      `imported space ${s.dbId}${s.fromSpace !== null && s.fromSpace !== s.dbId ? ` (space ${s.fromSpace} of the file)` : ''} from ${name}: ${s.images} images, ${s.keywords} keywords${s.replaced > 0 ? ` (replaced ${s.replaced} images)` : ''}`,
  );
  if (summary.skipped.length > 0) lines.push(`not imported: space${summary.skipped.length === 1 ? '' : 's'} ${summary.skipped.join(', ')} of ${name}`);
  return lines;
}
