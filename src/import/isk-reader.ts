import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import * as sigTypes from '../signature/types.ts';
import { ImportError } from './errors.ts';
import { FileCursor } from './file-cursor.ts';
import * as isk from './isk-format.ts';
import { type IskForm, type IskHeader, bucketName, describeForeign } from './isk-format.ts';

// Module-local copies: the parse loops run per coefficient, and an imported binding
// can cost a getter call per use where a loader wraps modules (tsx, vitest).
const { CHANNELS, COEFS_PER_CHANNEL, SIGNATURE_LENGTH } = sigTypes;
const {
  BUCKETS,
  COEF_SIDE,
  EMPTY_BODY_BYTES,
  HEADER_BYTES,
  OFF_AVGL,
  OFF_HEIGHT,
  OFF_SIGS,
  OFF_V06_HEIGHT,
  OFF_V06_WIDTH,
  OFF_WIDTH,
  RECORD_BYTES,
  RECORD_V06_BYTES,
  SRZ_LANG_JAVA,
  SRZ_LANG_PYTHON,
  SRZ_PLAT_LINUX,
  SRZ_PLAT_WINDOWS,
  SRZ_V0_5_1,
  SRZ_V0_6_0,
  SRZ_V0_7_0,
  SRZ_VERSIONED,
} = isk;
const pairHash = isk.pairHash;
const bucketOf = isk.bucketOf;

/**
 * One image as the file holds it. The parser reuses a single object for every image:
 * copy what you keep before the next one is read.
 */
export interface IskImage {
  id: number;
  width: number;
  height: number;
  /** Y, I, Q DC values. */
  avgl: Float64Array;
  /** The 120 coefficients in the file's order (Y, I, Q; iskdaemon's ascending magnitude). */
  fileCoefs: Int32Array;
  /** The same coefficients as haarseek keeps them: each channel sorted ascending. */
  coefs: Int32Array;
  /** ranks[j]: where fileCoefs[j] sits within its sorted channel (coefs[c * 40 + ranks[j]]). */
  ranks: Uint8Array;
  /** True when fileCoefs already equals coefs. */
  sortedInFile: boolean;
  /** Keywords in the file's order (a view; length = keyword count). */
  keywords: Int32Array;
}

export interface IskSpaceInfo {
  /** The space id from a savealldbs file; null for a savedb file (it has none). */
  dbId: number | null;
  imageCount: number;
  /** How many spaces the file holds (1 for savedb). */
  spaceCount: number;
}

/** Receives the file as it is read. space() returns whether the images should be delivered. */
export interface IskSink {
  space(info: IskSpaceInfo): boolean;
  image(image: IskImage): void;
  endSpace(info: IskSpaceInfo & { keywordCount: number }): void;
}

export interface IskFileSummary {
  form: IskForm;
  header: IskHeader;
  spaces: Array<IskSpaceInfo & { keywordCount: number }>;
  bytes: number;
}

/** Images between two yields of the parse generator (the async import's time slices). */
const YIELD_EVERY_IMAGES = 2048;
/** Bucket entries between two yields. */
const YIELD_EVERY_ENTRIES = 1 << 20;
const ID_HI_LIMIT = 0x200000;

/**
 * Reads the header and says which form the file is, refusing anything that is not an
 * iskdaemon 0.5.1 .. 0.9.5 file of the 64-bit little-endian layout with a message
 * saying what the file is instead.
 */
export function readIskHeader(path: string): { header: IskHeader; form: IskForm; size: number } {
  const fd = openSync(path, 'r');
  try {
    const head = new Uint8Array(64);
    const got = readSync(fd, head, 0, head.length, 0);
    const bytes = head.subarray(0, got);
    const view = new DataView(head.buffer, 0, got);
    const size = fstatSync(fd).size;
    if (size === 0) throw new ImportError('foreign', `${path} is empty (0 bytes), not an iskdaemon database file`);
    if (head[0] !== SRZ_VERSIONED || got < 4 || view.getInt32(0, true) !== SRZ_VERSIONED) {
      const what = describeForeign(bytes);
      if (what) throw new ImportError('foreign', `${path} is ${what}, not an iskdaemon database file`);
      if (got >= 8 && view.getInt32(0, false) === SRZ_VERSIONED && [SRZ_V0_5_1, SRZ_V0_6_0, SRZ_V0_7_0].includes(view.getInt32(4, false))) {
        throw new ImportError(
          'layout',
          `${path} is an iskdaemon file written on a big-endian machine (its header reads 1, ${view.getInt32(4, false)} big-endian); haarseek reads the little-endian layout of x86-64 and arm64 only`,
        );
      }
      if (got < 4 && head[0] === SRZ_VERSIONED) truncatedHeader(path, size, 'the isVersioned field (4 bytes)', 0);
      throw new ImportError(
        'foreign',
        `${path} is not an iskdaemon 0.5.1 .. 0.9.5 database file: it does not start with iskdaemon's header (int32 1; its first bytes are ${hex(bytes.subarray(0, 8))}); files of iskdaemon before 0.5.1 had no header and cannot be read`,
      );
    }
    if (got < 12) truncatedHeader(path, size, 'the header (16 bytes)', 0);
    const iskVersion = view.getInt32(4, true);
    const bindingLang = view.getInt32(8, true);
    if (iskVersion !== SRZ_V0_5_1 && iskVersion !== SRZ_V0_6_0 && iskVersion !== SRZ_V0_7_0) {
      throw new ImportError(
        'version',
        `${path} has iskdaemon format version ${iskVersion}; haarseek reads versions 1 (iskdaemon 0.5.1), 2 (0.6) and 3 (0.7 .. 0.9.5)`,
      );
    }
    if (bindingLang !== SRZ_LANG_PYTHON && bindingLang !== SRZ_LANG_JAVA) {
      throw new ImportError('damaged', `${path} has an impossible binding language ${bindingLang} in its header (iskdaemon writes 1 for Python, 2 for Java): not an iskdaemon file, or a damaged one`);
    }
    const hasTrial = iskVersion < SRZ_V0_7_0;
    const headerBytes = HEADER_BYTES + (hasTrial ? 4 : 0);
    if (got < headerBytes) truncatedHeader(path, size, `the header (${headerBytes} bytes)`, 0);
    const isTrial = hasTrial ? view.getInt32(12, true) : null;
    const compilePlat = view.getInt32(headerBytes - 4, true);
    if (compilePlat === SRZ_PLAT_WINDOWS) {
      throw new ImportError(
        'layout',
        `${path} was written by iskdaemon on Windows (header compilePlat = 1): there C long is 4 bytes, so its image ids, bucket entries and records have another layout; haarseek reads the 64-bit Linux/macOS layout only (load the file into iskdaemon on 64-bit Linux and save it again)`,
      );
    }
    if (compilePlat !== SRZ_PLAT_LINUX) {
      throw new ImportError('damaged', `${path} has an impossible platform ${compilePlat} in its header (iskdaemon writes 1 for Windows, 2 for Linux/macOS): not an iskdaemon file, or a damaged one`);
    }
    const header: IskHeader = { iskVersion, bindingLang, isTrial, compilePlat, bytes: headerBytes };
    // A savedb body starts with the size of bucket Y+0, always 0 (the DC coefficient is
    // never a signature entry); a savealldbs file has its space count there, 0 only when
    // the file holds no space at all (and then nothing follows).
    if (size < headerBytes + 4) truncatedHeader(path, size, 'the space count (4 bytes)', headerBytes);
    const first = got >= headerBytes + 4 ? view.getInt32(headerBytes, true) : readInt32At(fd, headerBytes);
    const form: IskForm = first === 0 && size > headerBytes + 4 ? 'savedb' : 'savealldbs';
    return { header, form, size };
  } finally {
    closeSync(fd);
  }
}

/**
 * Streams an iskdaemon file to `sink`, validating everything: structure, id range and
 * order, coefficients, avgl, and that the bucket section lists exactly the records'
 * coefficients. A generator so a caller can spread a long import over several event
 * loop turns; it yields between batches and returns the summary.
 */
export function* parseIskFile(path: string, sink: IskSink): Generator<void, IskFileSummary> {
  const { header, form } = readIskHeader(path);
  const cursor = new FileCursor(path);
  try {
    cursor.need(header.bytes, 'the header');
    cursor.skip(header.bytes);
    const spaces: IskFileSummary['spaces'] = [];
    try {
      if (form === 'savedb') {
        spaces.push(yield* parseSpace(cursor, header, null, 1, sink));
      } else {
        cursor.need(4, 'the number of database spaces');
        const count = cursor.i32();
        // Each space takes at least its id and an empty body; a count far beyond what
        // the file can hold is garbage, a nearly right one is left to the per-field
        // checks, which say exactly where a truncated file stops.
        const most = Math.floor(cursor.remaining() / (4 + EMPTY_BODY_BYTES));
        if (count < 0 || (count > most && count > 1024)) {
          throw new ImportError(
            'damaged',
            `${path}: the file says it holds ${count} database spaces (at byte ${cursor.offset() - 4}), but ${count < 0 ? 'a count cannot be negative' : `its remaining ${cursor.remaining()} bytes can hold at most ${most}`}: a damaged file, or not an iskdaemon one`,
          );
        }
        let previous = Number.NEGATIVE_INFINITY;
        for (let s = 0; s < count; s++) {
          cursor.need(4, `the id of database space ${s + 1} of ${count}`);
          const at = cursor.offset();
          const dbId = cursor.i32();
          if (dbId <= previous) {
            throw new ImportError('damaged', `${path}: database space id ${dbId} at byte ${at} does not follow ${previous} (iskdaemon writes spaces in ascending id order, each once)`);
          }
          previous = dbId;
          spaces.push(yield* parseSpace(cursor, header, dbId, count, sink));
        }
      }
      if (cursor.remaining() > 0) {
        throw new ImportError(
          'damaged',
          `${path}: ${cursor.remaining()} unexpected bytes follow the last database space (from byte ${cursor.offset()} of ${cursor.size}); not a ${form} file as iskdaemon writes it`,
        );
      }
    } catch (err) {
      // A 32-bit file read with the 64-bit layout goes wrong somewhere; say what it is.
      if (err instanceof ImportError && (err.kind === 'damaged' || err.kind === 'truncated') && looksLike32Bit(path, header, form)) {
        throw new ImportError(
          'layout',
          `${path} is an iskdaemon file of a 32-bit build (4-byte image ids, 516-byte records and a 4-byte image count: iskdaemon on 32-bit Linux); haarseek reads the 64-bit Linux/macOS layout only (load the file into iskdaemon on 64-bit Linux and save it again)`,
        );
      }
      throw err;
    }
    return { form, header, spaces, bytes: cursor.size };
  } finally {
    cursor.close();
  }
}

function* parseSpace(cursor: FileCursor, header: IskHeader, dbId: number | null, spaceCount: number, sink: IskSink): Generator<void, IskSpaceInfo & { keywordCount: number }> {
  const path = cursor.path;
  const where = dbId === null ? 'the space' : `space ${dbId}`;
  // Buckets: checksum every (bucket, id) pair; the records must produce the same sum.
  let bucketSum = 0;
  let bucketEntries = 0;
  let sinceYield = 0;
  for (let b = 0; b < BUCKETS; b++) {
    if (cursor.buffered() < 4) cursor.need(4, `the size of bucket ${bucketName(b)} of ${where}`);
    const at = cursor.offset();
    const n = cursor.i32();
    if (n < 0 || n * 8 > cursor.remaining()) {
      throw new ImportError(
        n < 0 ? 'damaged' : 'truncated',
        n < 0
          ? `${path}: bucket ${bucketName(b)} of ${where} has a negative size ${n} at byte ${at}`
          : `${path} is truncated: bucket ${bucketName(b)} of ${where} lists ${n} image ids (${n * 8} bytes) from byte ${at + 4}, but the file ends at byte ${cursor.size}`,
      );
    }
    if (b % COEF_SIDE === 0 && n !== 0) {
      throw new ImportError('damaged', `${path}: bucket ${bucketName(b)} of ${where} (the DC coefficient, never part of a signature) lists ${n} images at byte ${at}`);
    }
    let left = n;
    while (left > 0) {
      const avail = cursor.fill(8) >> 3;
      const k = Math.min(left, avail);
      const p = cursor.pos;
      const sum = sumBucketEntries(cursor, p, k, b, bucketSum);
      if (sum < 0) {
        cursor.pos = p - 1 - sum;
        const id = (BigInt(cursor.view.getInt32(cursor.pos + 4, true)) << 32n) + BigInt(cursor.view.getUint32(cursor.pos, true));
        throw new ImportError('damaged', `${path}: bucket ${bucketName(b)} of ${where} holds image id ${id} at byte ${cursor.offset()}, outside 1..2^53-1`);
      }
      bucketSum = sum;
      cursor.pos = p + k * 8;
      left -= k;
      bucketEntries += k;
      sinceYield += k;
      if (sinceYield >= YIELD_EVERY_ENTRIES) {
        sinceYield = 0;
        yield;
      }
    }
  }

  yield;
  cursor.need(8, `the image count of ${where}`);
  const countAt = cursor.offset();
  const count = cursor.u64();
  const recordBytes = header.iskVersion < SRZ_V0_6_0 ? RECORD_V06_BYTES : RECORD_BYTES + 4;
  if (!(count * recordBytes <= cursor.remaining())) {
    throw new ImportError(
      'truncated',
      `${path} is truncated: ${where} says it holds ${Number.isNaN(count) ? 'more than 2^53' : count} images (at byte ${countAt}), at least ${Number.isNaN(count) ? 'that many' : count * recordBytes} bytes of records, but only ${cursor.remaining()} bytes follow`,
    );
  }
  if (bucketEntries !== count * SIGNATURE_LENGTH) {
    throw new ImportError(
      'damaged',
      `${path}: the bucket section of ${where} lists ${bucketEntries} entries, but ${count} images have ${count * SIGNATURE_LENGTH} coefficients`,
    );
  }
  const info: IskSpaceInfo = { dbId, imageCount: count, spaceCount };
  const deliver = sink.space(info);

  const records = new RecordReader(cursor, header, where);
  for (let k = 0; k < count; k++) {
    records.read(k, count);
    if (deliver) sink.image(records.image);
    if ((k + 1) % YIELD_EVERY_IMAGES === 0) yield;
  }
  yield;
  const { recordSum, keywordCount } = records;
  if (recordSum !== bucketSum) {
    throw new ImportError(
      'damaged',
      `${path}: the bucket section of ${where} does not list the coefficients its ${count} image records hold (checksums differ): the file is damaged`,
    );
  }
  const done = { ...info, keywordCount };
  sink.endSpace(done);
  return done;
}

const NO_KEYWORDS = new Int32Array(0);

/** Reads and checks one image record (and its keywords) at a time into a reused IskImage. */
class RecordReader {
  readonly image: IskImage = {
    id: 0,
    width: 0,
    height: 0,
    avgl: new Float64Array(CHANNELS),
    fileCoefs: new Int32Array(SIGNATURE_LENGTH),
    coefs: new Int32Array(SIGNATURE_LENGTH),
    ranks: new Uint8Array(SIGNATURE_LENGTH),
    sortedInFile: false,
    keywords: NO_KEYWORDS,
  };
  recordSum = 0;
  keywordCount = 0;
  private previousId = 0;
  private keywordBuf = new Int32Array(64);
  private readonly v06: boolean;
  private readonly size: number;

  constructor(
    private readonly cursor: FileCursor,
    header: IskHeader,
    private readonly where: string,
  ) {
    this.v06 = header.iskVersion < SRZ_V0_6_0;
    this.size = this.v06 ? RECORD_V06_BYTES : RECORD_BYTES;
  }

  read(k: number, count: number): void {
    const { cursor, image, where } = this;
    const path = cursor.path;
    if (cursor.buffered() < this.size) cursor.need(this.size, `the record of image ${k + 1} of ${count} in ${where}`);
    const view = cursor.view;
    const p = cursor.pos;
    const lo = view.getUint32(p, true);
    const hi = view.getInt32(p + 4, true);
    if (hi < 0 || hi >= ID_HI_LIMIT || (hi === 0 && lo === 0)) {
      throw new ImportError('damaged', `${path}: image ${k + 1} of ${where} (byte ${cursor.offset()}) has an id outside 1..2^53-1 (int64 ${hex(new Uint8Array(view.buffer, p, 8))})`);
    }
    const id = hi * 0x100000000 + lo;
    if (id <= this.previousId) {
      throw new ImportError('damaged', `${path}: image id ${id} (byte ${cursor.offset()}) in ${where} does not follow ${this.previousId} (iskdaemon writes images in ascending id order, each once)`);
    }
    this.previousId = id;
    image.id = id;
    const terms = readSignature(cursor, p + OFF_SIGS, lo, hi, image.fileCoefs);
    if (terms < 0) {
      const j = -1 - terms;
      throw new ImportError(
        'damaged',
        `${path}: image ${id} in ${where} (byte ${cursor.offset()}) has coefficient ${image.fileCoefs[j]} in its ${'YIQ'[Math.floor(j / COEFS_PER_CHANNEL)]} signature, outside +-1..16383`,
      );
    }
    this.recordSum = (this.recordSum + terms) >>> 0;
    let sorted = true;
    for (let c = 0; c < CHANNELS; c++) {
      const base = c * COEFS_PER_CHANNEL;
      const order = sortChannel(image.fileCoefs, base, image.coefs, image.ranks);
      if (order < 0) {
        throw new ImportError('damaged', `${path}: image ${id} in ${where} (byte ${cursor.offset()}) lists coefficient ${image.coefs[base - 1 - order]} twice in its ${'YIQ'[c]} signature`);
      }
      if (order === 0) sorted = false;
    }
    image.sortedInFile = sorted;
    for (let c = 0; c < CHANNELS; c++) {
      const v = view.getFloat64(p + OFF_AVGL + c * 8, true);
      if (!Number.isFinite(v)) throw new ImportError('damaged', `${path}: image ${id} in ${where} (byte ${cursor.offset()}) has a non-finite ${'YIQ'[c]} average (${v})`);
      image.avgl[c] = v;
    }
    image.width = view.getInt32(p + (this.v06 ? OFF_V06_WIDTH : OFF_WIDTH), true);
    image.height = view.getInt32(p + (this.v06 ? OFF_V06_HEIGHT : OFF_HEIGHT), true);
    if (image.width < 0 || image.height < 0) {
      throw new ImportError('damaged', `${path}: image ${id} in ${where} (byte ${cursor.offset()}) has a negative size ${image.width}x${image.height}`);
    }
    cursor.skip(this.size);
    image.keywords = this.v06 ? NO_KEYWORDS : this.readKeywords(id);
  }

  private readKeywords(id: number): Int32Array {
    const { cursor, where } = this;
    if (cursor.buffered() < 4) cursor.need(4, `the keyword count of image ${id} in ${where}`);
    const n = cursor.i32();
    if (n === 0) return NO_KEYWORDS;
    if (n < 0 || n * 4 > cursor.remaining()) {
      const at = cursor.offset() - 4;
      throw new ImportError(
        n < 0 ? 'damaged' : 'truncated',
        n < 0
          ? `${cursor.path}: image ${id} in ${where} has a negative keyword count ${n} at byte ${at}`
          : `${cursor.path} is truncated: image ${id} in ${where} has ${n} keywords (${n * 4} bytes) from byte ${at + 4}, but the file ends at byte ${cursor.size}`,
      );
    }
    if (n > this.keywordBuf.length) this.keywordBuf = new Int32Array(Math.max(n, this.keywordBuf.length * 2));
    for (let j = 0; j < n; ) {
      const avail = Math.min(n - j, cursor.fill(4) >> 2);
      for (let q = 0; q < avail; q++, j++) this.keywordBuf[j] = cursor.i32();
    }
    this.keywordCount += n;
    return this.keywordBuf.subarray(0, n);
  }
}

/**
 * Adds the checksum terms of k bucket entries (int64 ids) starting at buffer offset p
 * to sum. Returns the new sum (mod 2^32), or -(1 + offset of the entry) when an id is
 * outside 1..2^53-1. Its own small function: the loop runs once per bucket entry,
 * 120 times per image.
 */
function sumBucketEntries(cursor: FileCursor, p: number, k: number, b: number, sum: number): number {
  const words = cursor.words;
  const view = cursor.view;
  for (let j = 0; j < k; j++) {
    const at = p + j * 8;
    const lo = words ? words[at >> 2] >>> 0 : view.getUint32(at, true);
    const hi = words ? words[(at >> 2) + 1] : view.getInt32(at + 4, true);
    if (hi < 0 || hi >= ID_HI_LIMIT || (hi === 0 && lo === 0)) return -1 - (at - p);
    sum = (sum + pairHash(b, lo, hi)) >>> 0;
  }
  return sum;
}

/**
 * Copies a record's 120 int32 coefficients at buffer offset p into `into` and returns
 * the sum (mod 2^32) of their checksum terms for image id hi * 2^32 + lo, or -(1 + j)
 * when coefficient j is outside +-1..16383.
 */
function readSignature(cursor: FileCursor, p: number, lo: number, hi: number, into: Int32Array): number {
  const words = cursor.words;
  const view = cursor.view;
  let sum = 0;
  for (let j = 0; j < SIGNATURE_LENGTH; j++) {
    const v = words ? words[(p >> 2) + j] : view.getInt32(p + j * 4, true);
    into[j] = v;
    if (v === 0 || v >= COEF_SIDE || v <= -COEF_SIDE) return -1 - j;
    sum = (sum + pairHash(bucketOf((j / COEFS_PER_CHANNEL) | 0, v), lo, hi)) >>> 0;
  }
  return sum;
}

const SORT_LOW = new Int32Array(256);
const SORT_HIGH = new Int32Array(128);
const SORT_TMP_VALUES = new Int32Array(COEFS_PER_CHANNEL);
const SORT_TMP_POS = new Uint8Array(COEFS_PER_CHANNEL);
const SORT_POS = new Uint8Array(COEFS_PER_CHANNEL);

/**
 * Sorts the 40 coefficients of one channel (from[base..base+40), each +-1..16383) into
 * to[base..] ascending, and records in ranks[base + j] where from[base + j] went. A
 * two-pass radix sort: about twice as fast as TypedArray sort for 40 values, and it
 * yields the ranks for free. Returns 1 when the channel was already sorted, 0 when not,
 * and -(1 + r) when sorted position r repeats the coefficient before it.
 */
function sortChannel(from: Int32Array, base: number, to: Int32Array, ranks: Uint8Array): number {
  const low = SORT_LOW;
  const high = SORT_HIGH;
  low.fill(0);
  high.fill(0);
  for (let j = 0; j < COEFS_PER_CHANNEL; j++) {
    const key = from[base + j] + COEF_SIDE;
    low[key & 255]++;
    high[key >> 8]++;
  }
  for (let i = 0, sum = 0; i < 256; i++) {
    const n = low[i];
    low[i] = sum;
    sum += n;
  }
  for (let i = 0, sum = 0; i < 128; i++) {
    const n = high[i];
    high[i] = sum;
    sum += n;
  }
  for (let j = 0; j < COEFS_PER_CHANNEL; j++) {
    const v = from[base + j];
    const at = low[(v + COEF_SIDE) & 255]++;
    SORT_TMP_VALUES[at] = v;
    SORT_TMP_POS[at] = j;
  }
  for (let j = 0; j < COEFS_PER_CHANNEL; j++) {
    const v = SORT_TMP_VALUES[j];
    const at = high[(v + COEF_SIDE) >> 8]++;
    to[base + at] = v;
    SORT_POS[at] = SORT_TMP_POS[j];
  }
  let identity = 1;
  for (let r = 0; r < COEFS_PER_CHANNEL; r++) {
    if (r > 0 && to[base + r] === to[base + r - 1]) return -1 - r;
    ranks[base + SORT_POS[r]] = r;
    if (SORT_POS[r] !== r) identity = 0;
  }
  return identity;
}

/**
 * Whether the file reads cleanly as iskdaemon's 32-bit Linux layout (int32 ids in the
 * buckets, a uint32 image count, 516-byte records): checks the first space's buckets
 * and its first record.
 */
function looksLike32Bit(path: string, header: IskHeader, form: IskForm): boolean {
  const cursor = new FileCursor(path);
  try {
    cursor.need(header.bytes, 'the header');
    cursor.skip(header.bytes);
    if (form === 'savealldbs') {
      cursor.need(8, 'the space count and first space id');
      if (cursor.i32() < 1) return false;
      cursor.skip(4);
    }
    let entries = 0;
    for (let b = 0; b < BUCKETS; b++) {
      if (cursor.fill(4) < 4) return false;
      const n = cursor.i32();
      if (n < 0 || n * 4 > cursor.remaining() || (b % COEF_SIDE === 0 && n !== 0)) return false;
      for (let left = n; left > 0; ) {
        const k = Math.min(left, cursor.fill(4) >> 2);
        for (let j = 0; j < k; j++) if (cursor.i32() <= 0) return false;
        left -= k;
      }
      entries += n;
    }
    if (cursor.fill(4) < 4) return false;
    const count = cursor.view.getUint32(cursor.pos, true);
    cursor.skip(4);
    if (entries !== count * SIGNATURE_LENGTH) return false;
    if (count === 0) return true;
    if (cursor.fill(516) < 516) return false;
    if (cursor.i32() <= 0) return false;
    for (let j = 0; j < SIGNATURE_LENGTH; j++) {
      const v = cursor.i32();
      if (v === 0 || v >= COEF_SIDE || v <= -COEF_SIDE) return false;
    }
    return true;
  } catch {
    return false;
  } finally {
    cursor.close();
  }
}

function truncatedHeader(path: string, size: number, what: string, at: number): never {
  throw new ImportError('truncated', `${path} is truncated: ${what} was expected at byte ${at}, but the file ends at byte ${size}`);
}

function readInt32At(fd: number, at: number): number {
  const b = new Uint8Array(4);
  readSync(fd, b, 0, 4, at);
  return new DataView(b.buffer).getInt32(0, true);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (v) => v.toString(16).padStart(2, '0')).join(' ');
}
