import { createReadStream } from 'node:fs';
import { opendir, readdir, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Dirent } from 'node:fs';
import { type FailReason } from './outcome.ts';
import { idFromFileName, parseImageId } from './ids.ts';

/** Extensions of the formats sharp reads (svg left out: not a photograph). */
export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);

export function looksLikeImage(path: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(path).toLowerCase());
}

/** A file met by a walk; `explicit`: named on the command line (or in --ids), so taken whatever its extension. */
export interface FoundFile {
  path: string;
  explicit: boolean;
  /** A directory that could not be read (its files are not walked). */
  error?: string;
}

/**
 * Every file under the paths given, depth first, streamed: a directory is read through
 * opendir, so a folder of millions of files is never listed at once. `sorted` reads each
 * directory whole and in name order instead (sequential ids need the same order on every
 * run). Symbolic links to files are followed, to directories not (no loops).
 */
export async function* walkFiles(paths: readonly string[], sorted: boolean): AsyncGenerator<FoundFile> {
  for (const given of paths) {
    const path = resolve(given);
    const st = await stat(path);
    if (st.isDirectory()) yield* walkDirectory(path, sorted);
    else yield { path, explicit: true };
  }
}

async function* walkDirectory(dir: string, sorted: boolean): AsyncGenerator<FoundFile> {
  let entries: AsyncIterable<Dirent> | Dirent[];
  try {
    entries = sorted
      ? (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      : await opendir(dir, { bufferSize: 256 });
  } catch (err) {
    yield { path: dir, explicit: false, error: `the directory could not be read: ${(err as Error).message}` };
    return;
  }
  for await (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walkDirectory(path, sorted);
    else if (entry.isFile()) yield { path, explicit: false };
    else if (entry.isSymbolicLink()) {
      const target = await stat(path).catch(() => null);
      if (target?.isFile()) yield { path, explicit: false };
    }
  }
}

/** How many files walkFiles will yield (for the progress bar's total); as light as a walk gets. */
export async function countFiles(paths: readonly string[], signal: AbortSignal): Promise<number> {
  let n = 0;
  for await (const _ of walkFiles(paths, false)) {
    if (signal.aborted) break;
    n++;
  }
  return n;
}

/** A line of an --ids file: the file and its id, or why the line gives none. */
export interface IdLine {
  path: string;
  id: number | null;
  error?: string;
}

/**
 * Reads an --ids file, streamed: lines `path,id` (the last comma splits, so paths may
 * hold commas; a path may also be "quoted" CSV-style). Relative paths are taken from
 * the --ids file's folder. Blank lines, lines starting with # and a first line whose id
 * is not a number (a header such as `path,id`) are passed over.
 */
export async function* readIdLines(csvPath: string): AsyncGenerator<IdLine> {
  const base = dirname(resolve(csvPath));
  const lines = createInterface({ input: createReadStream(csvPath, { encoding: 'utf8' }), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const raw of lines) {
    lineNo++;
    const line = lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw;
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const comma = line.lastIndexOf(',');
    if (comma < 0) {
      yield { path: `${csvPath}:${lineNo}`, id: null, error: `line ${lineNo} of ${csvPath} is not "path,id": ${JSON.stringify(line.slice(0, 80))}` };
      continue;
    }
    const file = unquote(line.slice(0, comma).trim());
    const parsed = parseImageId(unquote(line.slice(comma + 1).trim()));
    if ('error' in parsed && lineNo === 1) continue; // a header
    const path = isAbsolute(file) ? file : resolve(base, file);
    if ('error' in parsed) yield { path, id: null, error: `line ${lineNo} of ${csvPath}: ${parsed.error}` };
    else yield { path, id: parsed.id };
  }
}

function unquote(field: string): string {
  return field.length >= 2 && field.startsWith('"') && field.endsWith('"') ? field.slice(1, -1).replace(/""/g, '"') : field;
}

/** How many lines readIdLines yields, for the progress bar's total. */
export async function countIdLines(csvPath: string, signal: AbortSignal): Promise<number> {
  let n = 0;
  for await (const _ of readIdLines(csvPath)) {
    if (signal.aborted) break;
    n++;
  }
  return n;
}

/** A file with the id it is to be stored under, or why it has none. */
export type Candidate =
  | { path: string; id: number }
  | { path: string; id: number | null; fail: FailReason; message: string }
  | { path: string; id: null; notImage: true };

/** Where ids come from: numeric file names, an --ids file, or a counter from --start-id. */
export type IdSource = { kind: 'names' } | { kind: 'csv'; file: string } | { kind: 'sequential'; start: number };

/**
 * The files of a run with their ids, in walk order. With an --ids file and no paths,
 * the file's lines are the files (streamed); with paths, the --ids file is read into
 * memory first and the walked files looked up in it.
 */
export async function* candidates(paths: readonly string[], ids: IdSource): AsyncGenerator<Candidate> {
  if (ids.kind === 'csv' && paths.length === 0) {
    for await (const line of readIdLines(ids.file)) {
      if (line.id === null) yield { path: line.path, id: null, fail: 'bad-id', message: line.error! };
      else yield { path: line.path, id: line.id };
    }
    return;
  }
  let table: Map<string, IdLine> | null = null;
  const csvFile = ids.kind === 'csv' ? ids.file : '';
  if (ids.kind === 'csv') {
    table = new Map();
    for await (const line of readIdLines(ids.file)) if (!table.has(line.path)) table.set(line.path, line);
  }
  let next = ids.kind === 'sequential' ? ids.start : 0;
  for await (const file of walkFiles(paths, ids.kind === 'sequential')) {
    if (file.error) {
      yield { path: file.path, id: null, fail: 'unreadable', message: file.error };
      continue;
    }
    if (!file.explicit && !looksLikeImage(file.path)) {
      yield { path: file.path, id: null, notImage: true };
      continue;
    }
    if (ids.kind === 'sequential') {
      yield next > 2 ** 53 ? { path: file.path, id: null, fail: 'bad-id', message: `the next sequential id, ${next}, is past 2^53` } : { path: file.path, id: next };
      next++;
    } else if (table) {
      const line = table.get(file.path);
      if (!line) yield { path: file.path, id: null, fail: 'no-id', message: `${csvFile} has no line for this file` };
      else if (line.id === null) yield { path: file.path, id: null, fail: 'bad-id', message: line.error! };
      else yield { path: file.path, id: line.id };
    } else {
      const named = idFromFileName(file.path);
      if ('id' in named) yield { path: file.path, id: named.id };
      else yield { path: file.path, id: null, fail: named.reason, message: named.error };
    }
  }
}
