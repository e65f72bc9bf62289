import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import Database from 'better-sqlite3';
import { CHANNELS, COEFS_PER_CHANNEL, SIGNATURE_LENGTH } from '../signature/types.ts';
import { APPLICATION_ID } from '../store/schema.ts';
import { ImportError } from './errors.ts';
import { COEF_SIDE, SRZ_VERSIONED, describeForeign } from './isk-format.ts';

/**
 * danbooru/iqdb's database (iqdb 2021+, sqlite_db.cpp): one table
 *   images(id INTEGER PRIMARY KEY, post_id INTEGER UNIQUE, avglf1..3 REAL, sig BLOB)
 * where sig is the raw int16_t sig[3][40] (little-endian, each channel sorted
 * ascending) and avglf1..3 the Y, I, Q DC values. iqdb keeps no image size and no
 * keywords. See ../shared/golden/imports/iqdb.json.
 */
const REQUIRED_COLUMNS = ['id', 'post_id', 'avglf1', 'avglf2', 'avglf3', 'sig'];
const SQLITE_MAGIC = 'SQLite format 3\0';

/** One row; reused between rows. coefs is each channel sorted ascending. */
export interface IqdbImage {
  iqdbId: number;
  postId: number;
  avgl: Float64Array;
  coefs: Int32Array;
}

type IqdbRow = [id: number, postId: number, y: unknown, i: unknown, q: unknown, sig: unknown];

/** An open iqdb database, checked to be one and complete. */
export class IqdbFile {
  private constructor(
    readonly path: string,
    private readonly db: Database.Database,
    readonly rowCount: number,
  ) {}

  /**
   * Opens read-only after checking the file is a whole SQLite file (its header's page
   * count against its size) holding iqdb's table; refuses anything else by name.
   */
  static open(path: string): IqdbFile {
    checkSqliteFile(path);
    let db: Database.Database;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true });
    } catch (err) {
      throw sqliteRefusal(path, err);
    }
    try {
      if ((db.pragma('application_id', { simple: true }) as number) === APPLICATION_ID) {
        throw new ImportError('foreign', `${path} is a haarseek database, not an iqdb one (restore it with loadDb/loadAllDbs)`);
      }
      const columns = (db.prepare("SELECT name FROM pragma_table_info('images')").pluck().all() as string[]).map((c) => c.toLowerCase());
      const missing = REQUIRED_COLUMNS.filter((c) => !columns.includes(c));
      if (missing.length > 0) {
        const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[];
        throw new ImportError(
          'foreign',
          columns.length === 0
            ? `${path} is a SQLite database without iqdb's images table (its tables: ${tables.join(', ') || 'none'}): not an iqdb database`
            : `${path} has an images table without iqdb's column(s) ${missing.join(', ')}: not an iqdb database`,
        );
      }
      const rowCount = db.prepare('SELECT count(*) FROM images').pluck().get() as number;
      return new IqdbFile(path, db, rowCount);
    } catch (err) {
      db.close();
      throw err instanceof ImportError ? err : sqliteRefusal(path, err);
    }
  }

  close(): void {
    this.db.close();
  }

  /** Every row in ascending post_id, validated; the image object is reused. */
  *images(): Generator<IqdbImage> {
    const image: IqdbImage = { iqdbId: 0, postId: 0, avgl: new Float64Array(CHANNELS), coefs: new Int32Array(SIGNATURE_LENGTH) };
    const stmt = this.db.prepare('SELECT id, post_id, avglf1, avglf2, avglf3, sig FROM images ORDER BY post_id').raw();
    let rows: IterableIterator<IqdbRow>;
    try {
      rows = stmt.iterate() as IterableIterator<IqdbRow>;
    } catch (err) {
      throw sqliteRefusal(this.path, err);
    }
    try {
      for (;;) {
        let next: IteratorResult<IqdbRow>;
        try {
          next = rows.next();
        } catch (err) {
          throw sqliteRefusal(this.path, err);
        }
        if (next.done) return;
        const [iqdbId, postId, y, i, q, sig] = next.value;
        const what = `${this.path}: post ${postId} (iqdb id ${iqdbId})`;
        if (!Number.isSafeInteger(postId) || postId < 1) throw new ImportError('damaged', `${this.path}: iqdb id ${iqdbId} has post_id ${String(postId)}, outside 1..2^53-1`);
        for (const [c, v] of [y, i, q].entries()) {
          if (typeof v !== 'number' || !Number.isFinite(v)) throw new ImportError('damaged', `${what} has avglf${c + 1} = ${String(v)}, not a finite number`);
          image.avgl[c] = v;
        }
        if (!(sig instanceof Uint8Array) || sig.byteLength !== SIGNATURE_LENGTH * 2) {
          throw new ImportError('damaged', `${what} has a sig of ${sig instanceof Uint8Array ? `${sig.byteLength} bytes` : typeof sig}, expected a ${SIGNATURE_LENGTH * 2}-byte blob`);
        }
        const view = new DataView(sig.buffer, sig.byteOffset, sig.byteLength);
        for (let c = 0; c < CHANNELS; c++) {
          const base = c * COEFS_PER_CHANNEL;
          for (let j = 0; j < COEFS_PER_CHANNEL; j++) {
            const v = view.getInt16((base + j) * 2, true);
            if (v === 0 || v >= COEF_SIDE || v <= -COEF_SIDE) throw new ImportError('damaged', `${what} has coefficient ${v} in its ${'YIQ'[c]} signature, outside +-1..16383`);
            image.coefs[base + j] = v;
          }
          const channel = image.coefs.subarray(base, base + COEFS_PER_CHANNEL);
          channel.sort();
          for (let j = 1; j < COEFS_PER_CHANNEL; j++) {
            if (channel[j] === channel[j - 1]) throw new ImportError('damaged', `${what} lists coefficient ${channel[j]} twice in its ${'YIQ'[c]} signature`);
          }
        }
        image.iqdbId = iqdbId;
        image.postId = postId;
        yield image;
      }
    } finally {
      // An open cursor would keep the connection busy (close() would throw).
      rows.return?.();
    }
  }
}

/** Refuses what is not a complete SQLite file, saying what it is instead. */
function checkSqliteFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = new Uint8Array(100);
    const got = readSync(fd, head, 0, 100, 0);
    const magicOk = [...SQLITE_MAGIC].every((ch, k) => head[k] === ch.charCodeAt(0));
    if (!magicOk) {
      if (size === 0) throw new ImportError('foreign', `${path} is empty (0 bytes), not an iqdb database`);
      const view = new DataView(head.buffer);
      if (got >= 8 && view.getInt32(0, true) === SRZ_VERSIONED && view.getInt32(4, true) >= 1 && view.getInt32(4, true) <= 3) {
        throw new ImportError('foreign', `${path} looks like an iskdaemon database file, not an iqdb one (import it with \`haarseek import isk\`)`);
      }
      const what = describeForeign(head.subarray(0, got));
      throw new ImportError('foreign', `${path} is ${what ?? 'not a SQLite file'}, not an iqdb database`);
    }
    if (got < 100) throw new ImportError('truncated', `${path} is truncated: a SQLite file starts with a 100-byte header, the file has ${size} bytes`);
    const view = new DataView(head.buffer);
    const rawPageSize = view.getUint16(16, false);
    const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
    const changeCounter = view.getUint32(24, false);
    const pages = view.getUint32(28, false);
    const validFor = view.getUint32(92, false);
    if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) {
      throw new ImportError('damaged', `${path} has an impossible SQLite page size ${rawPageSize} in its header: a damaged file`);
    }
    if (pages > 0 && validFor === changeCounter && size < pages * pageSize) {
      throw new ImportError(
        'truncated',
        `${path} is truncated: its header says ${pages} pages of ${pageSize} bytes (${pages * pageSize} bytes), but the file has ${size} bytes`,
      );
    }
    if (size % pageSize !== 0) {
      throw new ImportError('truncated', `${path} is truncated or damaged: ${size} bytes is not a whole number of ${pageSize}-byte SQLite pages`);
    }
  } finally {
    closeSync(fd);
  }
}

function sqliteRefusal(path: string, err: unknown): ImportError {
  const code = String((err as { code?: unknown }).code ?? '');
  const message = (err as Error).message;
  if (code === 'SQLITE_NOTADB') return new ImportError('foreign', `${path} is not a SQLite database (${message})`);
  if (code.startsWith('SQLITE_CORRUPT')) return new ImportError('damaged', `${path} is a damaged SQLite database (${message})`);
  return new ImportError('damaged', `${path} could not be read as an iqdb database: ${message}`);
}
