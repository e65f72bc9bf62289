import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { ImportError, type ImportErrorKind } from '../../src/import/errors.ts';
import { type IskFileSummary, type IskImage, parseIskFile } from '../../src/import/isk-reader.ts';
import { GOLDEN_DIR } from '../helpers/paths.ts';

export const IMPORTS_DIR = join(GOLDEN_DIR, 'imports');
export const ISK_ALL = join(IMPORTS_DIR, 'iskdaemon-0.9.5.isk');
export const ISK_ONE = join(IMPORTS_DIR, 'iskdaemon-0.9.5-savedb-space1.isk');
export const IQDB = join(IMPORTS_DIR, 'iqdb.sqlite');

export interface IskJsonImage {
  id: number;
  record_offset: number;
  width: number;
  height: number;
  avgl: [number, number, number];
  sig_stored_order: [number[], number[], number[]];
  sig_sorted: [number[], number[], number[]];
  keywords_stored_order: number[];
}

export interface IskJson {
  size_bytes: number;
  header_values: { isVersioned: number; iskVersion: number; bindingLang: number; compilePlat: number };
  byte_map_of_this_file: Record<string, [number, number]>;
  also_written: Record<string, { size_bytes: number; query_after_load: Array<{ call: string; result_id_score_pairs: Array<[number, number]> }> }>;
  spaces: Array<{ space: number; space_header_offset: number; image_count: number; images: IskJsonImage[] }>;
  keywords_added: Record<string, number[] | string>;
  queries_after_load: {
    results: Array<{ call: string; result_id_score_pairs: Array<[number, number]>; max_abs_diff_vs_scores_json_raw: number; api_view: Array<[number, number]> }>;
  };
}

export interface IqdbJsonPost {
  iqdb_id: number;
  post_id: number;
  avgl: [number, number, number];
  avgl_ieee754_hex: [string, string, string];
  sig: [number[], number[], number[]];
  sig_blob_hex: string;
  iqdb_treats_as_grayscale: boolean;
}

export interface IqdbJson {
  posts: IqdbJsonPost[];
  queries: Record<string, { request: string; result_post_id_score: Array<[number, number]> }>;
}

export const iskJson: IskJson = JSON.parse(readFileSync(join(IMPORTS_DIR, 'iskdaemon-0.9.5.json'), 'utf8'));
export const iqdbJson: IqdbJson = JSON.parse(readFileSync(join(IMPORTS_DIR, 'iqdb.json'), 'utf8'));

export function tempDir(prefix = 'haarseek-import-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A decoded image, copied out of the parser's reused object. */
export interface ParsedImage {
  id: number;
  width: number;
  height: number;
  avgl: number[];
  fileCoefs: number[][];
  coefs: number[][];
  keywords: number[];
}

export interface ParsedSpace {
  dbId: number | null;
  imageCount: number;
  images: ParsedImage[];
}

function channels(values: Int32Array): number[][] {
  return [0, 1, 2].map((c) => Array.from(values.subarray(c * 40, (c + 1) * 40)));
}

/** Runs the streaming parser to the end and keeps everything it delivered. */
export function parseAll(path: string): { summary: IskFileSummary; spaces: ParsedSpace[] } {
  const spaces: ParsedSpace[] = [];
  const job = parseIskFile(path, {
    space(info) {
      spaces.push({ dbId: info.dbId, imageCount: info.imageCount, images: [] });
      return true;
    },
    image(image: IskImage) {
      spaces[spaces.length - 1].images.push({
        id: image.id,
        width: image.width,
        height: image.height,
        avgl: Array.from(image.avgl),
        fileCoefs: channels(image.fileCoefs),
        coefs: channels(image.coefs),
        keywords: Array.from(image.keywords),
      });
    },
    endSpace() {},
  });
  return { summary: drain(job), spaces };
}

export function drain<T>(job: Generator<void, T>): T {
  for (;;) {
    const step = job.next();
    if (step.done) return step.value;
  }
}

/** Every table's rows (blobs as hex) and the header pragmas: equal dumps = unchanged database. */
export function dumpDatabase(path: string): string {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name, sql FROM sqlite_master ORDER BY name").all() as Array<{ name: string; sql: string | null }>;
    const out: Record<string, unknown> = {
      application_id: db.pragma('application_id', { simple: true }),
      user_version: db.pragma('user_version', { simple: true }),
      schema: tables,
    };
    for (const { name } of tables) {
      const isTable = (db.prepare("SELECT type FROM sqlite_master WHERE name = ?").pluck().get(name) as string) === 'table';
      if (!isTable || name.startsWith('sqlite_')) continue;
      out[name] = (db.prepare(`SELECT * FROM "${name}" ORDER BY 1, 2`).raw().all() as unknown[][]).map((row) =>
        row.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : v)),
      );
    }
    return JSON.stringify(out);
  } finally {
    db.close();
  }
}

/** Expects fn to throw an ImportError of this kind whose message matches every pattern. */
export function expectRefusal(fn: () => unknown, kind: ImportErrorKind, ...patterns: RegExp[]): ImportError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected the file to be refused').toBeInstanceOf(ImportError);
  const err = caught as ImportError;
  expect(err.kind, err.message).toBe(kind);
  for (const p of patterns) expect(err.message).toMatch(p);
  return err;
}

// --- Variants of the real file, built from its bytes --------------------------------

const BUCKETS = 3 * 2 * 16384;

/** Offsets of the structure of a 64-bit file (header 16 bytes, savealldbs or savedb). */
interface Walk {
  spaceIdAt: number[];
  bucketsAt: number[];
  countAt: number[];
  recordsAt: number[][];
  keywordsAt: number[][];
}

export function walk64(buf: Buffer, form: 'savealldbs' | 'savedb'): Walk {
  const w: Walk = { spaceIdAt: [], bucketsAt: [], countAt: [], recordsAt: [], keywordsAt: [] };
  let p = 16;
  const spaces = form === 'savealldbs' ? buf.readInt32LE(p) : 1;
  if (form === 'savealldbs') p += 4;
  for (let s = 0; s < spaces; s++) {
    if (form === 'savealldbs') {
      w.spaceIdAt.push(p);
      p += 4;
    }
    w.bucketsAt.push(p);
    for (let b = 0; b < BUCKETS; b++) p += 4 + buf.readInt32LE(p) * 8;
    w.countAt.push(p);
    const n = Number(buf.readBigUInt64LE(p));
    p += 8;
    const records: number[] = [];
    const keywords: number[] = [];
    for (let k = 0; k < n; k++) {
      records.push(p);
      p += 520;
      keywords.push(p);
      p += 4 + buf.readInt32LE(p) * 4;
    }
    w.recordsAt.push(records);
    w.keywordsAt.push(keywords);
  }
  expect(p).toBe(buf.length);
  return w;
}

/** The same content in iskdaemon's 32-bit Linux layout: int32 ids, uint32 count, 516-byte records. */
export function to32Bit(buf: Buffer, form: 'savealldbs' | 'savedb'): Buffer {
  const parts: Buffer[] = [buf.subarray(0, 16)];
  let p = 16;
  const spaces = form === 'savealldbs' ? buf.readInt32LE(p) : 1;
  if (form === 'savealldbs') {
    parts.push(buf.subarray(p, p + 4));
    p += 4;
  }
  const i32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return b;
  };
  for (let s = 0; s < spaces; s++) {
    if (form === 'savealldbs') {
      parts.push(buf.subarray(p, p + 4));
      p += 4;
    }
    for (let b = 0; b < BUCKETS; b++) {
      const n = buf.readInt32LE(p);
      parts.push(i32(n));
      p += 4;
      for (let k = 0; k < n; k++, p += 8) parts.push(i32(Number(buf.readBigInt64LE(p))));
    }
    const n = Number(buf.readBigUInt64LE(p));
    parts.push(i32(n));
    p += 8;
    for (let k = 0; k < n; k++) {
      parts.push(i32(Number(buf.readBigInt64LE(p))), buf.subarray(p + 8, p + 488), buf.subarray(p + 488, p + 512), buf.subarray(p + 512, p + 520));
      p += 520;
      const nk = buf.readInt32LE(p);
      parts.push(buf.subarray(p, p + 4 + nk * 4));
      p += 4 + nk * 4;
    }
  }
  return Buffer.concat(parts);
}

/** An iskVersion 2 (iskdaemon 0.6) file: a 5-int header with isTrial, same records. */
export function toVersion2(buf: Buffer): Buffer {
  const header = Buffer.alloc(20);
  [1, 2, 1, 0, 2].forEach((v, k) => header.writeInt32LE(v, k * 4));
  return Buffer.concat([header, buf.subarray(16)]);
}

/** An iskVersion 1 (0.5.1) file: 5-int header, 528-byte records (a score before width), no keywords. */
export function toVersion1(buf: Buffer, form: 'savealldbs' | 'savedb'): Buffer {
  const w = walk64(buf, form);
  const header = Buffer.alloc(20);
  [1, 1, 1, 0, 2].forEach((v, k) => header.writeInt32LE(v, k * 4));
  const parts: Buffer[] = [header];
  let p = 16;
  for (let s = 0; s < w.countAt.length; s++) {
    parts.push(buf.subarray(p, w.countAt[s] + 8));
    for (const r of w.recordsAt[s]) {
      const rec = Buffer.alloc(528);
      buf.copy(rec, 0, r, r + 512);
      rec.writeDoubleLE(12.5, 512);
      buf.copy(rec, 520, r + 512, r + 520);
      parts.push(rec);
    }
    const last = w.keywordsAt[s][w.keywordsAt[s].length - 1];
    p = last + 4 + buf.readInt32LE(last) * 4;
  }
  return Buffer.concat(parts);
}
