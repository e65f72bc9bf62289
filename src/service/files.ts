import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { FileError, ImageError, PathNotAllowedError } from '../errors.ts';
import type { ServiceContext } from './context.ts';
import { importIskAsync, sniffDatabaseFile } from '../import/import.ts';
import { openWritable } from '../store/open.ts';
import { confinePath } from './paths.ts';
import type { SignatureMaker } from './signatures.ts';
import type { WriteService } from './writes.ts';

/** Files per transaction in addDir. */
const ADD_DIR_BATCH = 64;
const IMAGE_FILE = /\.(jpe?g|png|gif|webp|avif|tiff?|bmp|svg)$/i;

/** Everything that names a file on the server: image files, directories, save points, exports. */
export class FileService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly signatures: SignatureMaker,
    private readonly writes: WriteService,
  ) {}

  async readImage(path: string): Promise<Uint8Array> {
    const file = confinePath(path, this.ctx.o.allowedDirs, true);
    const size = statSync(file).size;
    const limit = this.ctx.o.decodeLimits.maxInputBytes;
    if (size > limit) throw new ImageError('too-large', `${path} is ${size} bytes; the limit is ${limit} bytes`);
    return readFile(file);
  }

  async addImageFile(dbId: number, imageId: number, path: string): Promise<void> {
    this.ctx.store();
    await this.writes.addImage(dbId, imageId, await this.readImage(path));
  }

  /**
   * Adds every image file under path (recursing when asked) whose name contains the
   * optional filter; a file's id is its numeric base name. Files without a numeric name,
   * and files that do not decode, are skipped (the count tells how many were added).
   * Decodes run in parallel and are committed in batches. Returns how many were added.
   */
  async addDirectory(dbId: number, path: string, recurse: boolean, nameFilter: string): Promise<number> {
    this.ctx.store();
    const root = confinePath(path, this.ctx.o.allowedDirs, true);
    const files = listImageFiles(root, recurse).filter(({ name, id }) => id !== null && (!nameFilter || name.includes(nameFilter)));
    let added = 0;
    for (let start = 0; start < files.length; start += ADD_DIR_BATCH) {
      const batch = files.slice(start, start + ADD_DIR_BATCH);
      const settled = await Promise.allSettled(batch.map(async ({ file, id }) => ({ imageId: id!, ...(await this.signatures.of(await readFile(file))) })));
      const decoded = [];
      for (const result of settled) {
        if (result.status === 'fulfilled') decoded.push(result.value);
        else if (!(result.reason instanceof ImageError)) throw result.reason;
      }
      added += this.writes.addSignatures(dbId, decoded);
    }
    return added;
  }

  /** Writes a save point of every space (the default one, or a file); returns the space count. */
  saveAll(path?: string): number {
    const store = this.ctx.store();
    store.saveAllTo(path === undefined ? this.ctx.o.savepointPath : this.usablePath(path, false));
    if (path === undefined) this.ctx.stats.savedAll();
    return this.ctx.o.catalog.ids().length;
  }

  /**
   * Restores every space from a save point (the default one, or a file: a haarseek save
   * point, or iskdaemon's own savealldbs file); returns the space count.
   */
  async loadAll(path?: string): Promise<number> {
    const store = this.ctx.store();
    const file = path === undefined ? this.ctx.o.savepointPath : this.usablePath(path, true);
    try {
      statSync(file);
    } catch {
      throw new FileError(path === undefined ? 'there is no save point yet: call saveAllDbs first' : `no such file: ${path}`);
    }
    if (sniffDatabaseFile(file) === 'isk') await this.importIskFile(file, undefined);
    else store.restoreFrom(file, 'all');
    this.ctx.o.catalog.reloadFrom(store);
    return this.ctx.o.catalog.ids().length;
  }

  exportSpace(dbId: number, path: string): void {
    this.ctx.index(dbId);
    this.ctx.store().saveSpaceTo(dbId, this.usablePath(path, false));
  }

  /** Replaces one space with a file's: a haarseek export, or iskdaemon's savedb/savealldbs file. */
  async importSpace(dbId: number, path: string): Promise<void> {
    const store = this.ctx.store();
    const file = this.usablePath(path, true);
    if (sniffDatabaseFile(file) === 'isk') await this.importIskFile(file, dbId);
    else store.restoreFrom(file, dbId);
    this.ctx.o.catalog.reloadFrom(store, new Set([dbId]));
  }

  /**
   * iskdaemon's file, imported on a connection of its own in slices (the event loop
   * keeps turning); one transaction, so a bad file changes nothing. Writes meanwhile are
   * answered busy rather than joining or waiting on the import's transaction.
   */
  private async importIskFile(file: string, space: number | undefined): Promise<void> {
    const store = this.ctx.store();
    this.ctx.busyWith = `an import of ${file}`;
    const db = openWritable(store.path);
    try {
      await importIskAsync(db, file, { space });
    } finally {
      db.close();
      this.ctx.busyWith = null;
    }
  }

  /**
   * A client-named save, load or export path: inside the allowed directories and never
   * one of the files the server itself runs on (replacing the live database, its journal
   * or a lock would break the running writer; loading it would read it while it is written).
   */
  private usablePath(path: string, mustExist: boolean): string {
    const file = confinePath(path, this.ctx.o.allowedDirs, false);
    if (this.ctx.o.protectedPaths.some((p) => (p.endsWith(sep) ? insideDir(p, file) : samePath(p, file)))) {
      throw new PathNotAllowedError(`${path} is a file this server runs on (its database, journal, lock, key, save point or index segments); choose another file name`);
    }
    if (mustExist && !existsSync(file)) throw new FileError(`no such file: ${path}`);
    return file;
  }
}

function realOrResolved(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
}

function samePath(a: string, b: string): boolean {
  return realOrResolved(a) === realOrResolved(b);
}

/** Whether file is dir itself or inside it (dir ends with a separator). */
function insideDir(dir: string, file: string): boolean {
  const d = realOrResolved(dir);
  const f = realOrResolved(file);
  return f === d || f.startsWith(d.endsWith(sep) ? d : d + sep);
}

function listImageFiles(root: string, recurse: boolean): Array<{ file: string; name: string; id: number | null }> {
  const out: Array<{ file: string; name: string; id: number | null }> = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (recurse) walk(full);
      } else if (entry.isFile() && IMAGE_FILE.test(entry.name)) {
        const id = Number(entry.name.replace(/\.[^.]*$/, ''));
        out.push({ file: full, name: entry.name, id: Number.isSafeInteger(id) && id >= 1 ? id : null });
      }
    }
  };
  if (statSync(root).isDirectory()) walk(root);
  else throw new FileError(`${root} is not a directory`);
  return out;
}
