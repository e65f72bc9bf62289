/**
 * The index segment file: one database space's inverted index, written once (by
 * segment-writer.ts) and then mapped read-only by every reader on the host (native
 * engine) or read into memory (TypeScript engine). Both readers parse and check it the
 * same way; native/src/segment.cc mirrors the layout below.
 *
 * Layout, little-endian, every section 64-byte aligned:
 *
 *   header      4096 bytes (fields below; the rest zero)
 *   ids         count float64, strictly ascending; an image's slot is its rank
 *   avgl        3 arrays of count float64: Y, then I, then Q
 *   avgl8       count × 4 bytes: Y, I, Q quantized to 8 bits (min + v·step, the header's
 *               per-channel min and step; |avgl - dequantized| <= step/2), then a zero
 *               byte; a query's lower bound of the avgl term (native bounded query)
 *   postings    chunk after chunk (chunk c holds slots c·65536 .. c·65536+65535, each
 *               chunk 64-byte aligned): for each of the 98,304 lists (channel, sign,
 *               coefficient, as the in-memory indexes number them), in list order,
 *               either an array of uint16 local slots (ascending, fewer than 4096 of
 *               them) or, for 4096 and more, a bitmap of 65,536 bits (8192 bytes,
 *               8-byte aligned, preceded by 0-3 uint16 of padding)
 *   chunk table chunks + 1 uint64: each chunk's byte offset inside postings, then the end
 *   directory   chunks × 98,305 uint32: list l of chunk c spans uint16 units
 *               [dir[c][l], dir[c][l+1]) of that chunk; a span of 4096 or more units is
 *               a bitmap held in its last 4096 units
 *
 * A score is computed exactly as the in-memory indexes do (avgl term, then one
 * subtraction per matching query coefficient in query order), so a segment ranks and
 * scores bit-identically; the chunks only bound the working set of a query to a chunk.
 */
import { crc32 as zlibCrc32 } from 'node:zlib';
import { CHANNELS, PIXELS } from '../signature/types.ts';

export const SEGMENT_MAGIC = Uint8Array.of(0x89, 0x48, 0x53, 0x45, 0x47, 0x0d, 0x0a, 0x1a); // \x89HSEG\r\n\x1a
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 4096;
export const SEGMENT_BYTE_ORDER_MARK = 0x01020304;
export const CHUNK_BITS = 16;
export const CHUNK_SLOTS = 1 << CHUNK_BITS;
export const SEGMENT_LISTS = CHANNELS * 2 * PIXELS;
/** A list of this many postings or more in a chunk is stored as a bitmap (8192 bytes). */
export const BITMAP_MIN_POSTINGS = 4096;
/** A bitmap's size in uint16 units. */
export const BITMAP_UNITS = CHUNK_SLOTS / 16;
export const SECTION_ALIGN = 64;

/** Byte offsets of the header fields. */
export const H = {
  magic: 0,
  version: 8,
  byteOrder: 12,
  headerBytes: 16,
  chunkBits: 20,
  lists: 24,
  chunks: 28,
  count: 32,
  seq: 40,
  dbId: 48,
  fileBytes: 56,
  idsOffset: 64,
  avglOffset: 72,
  postingsOffset: 80,
  postingsBytes: 88,
  chunkTableOffset: 96,
  dirOffset: 104,
  bitmapMinPostings: 112,
  createdAtMs: 120,
  bodyCrc: 128,
  headerCrc: 132,
  avgl8Offset: 136,
  /** 3 float64: the quantization's minimum per channel, then (at 168) 3 float64 steps. */
  avgl8Min: 144,
  avgl8Step: 168,
  flags: 192,
} as const;

/** Header flag: some avgl value is not finite (the quantized copy gives no bound then). */
export const FLAG_NON_FINITE_AVGL = 1;

export interface SegmentHeader {
  version: number;
  chunks: number;
  count: number;
  /** The change-log sequence the segment covers: every change up to it is in. */
  seq: number;
  dbId: number;
  fileBytes: number;
  idsOffset: number;
  avglOffset: number;
  postingsOffset: number;
  postingsBytes: number;
  chunkTableOffset: number;
  dirOffset: number;
  createdAtMs: number;
  bodyCrc: number;
  avgl8Offset: number;
  avgl8Min: [number, number, number];
  avgl8Step: [number, number, number];
  flags: number;
}

/** A file that is not a usable segment: foreign, from another version, truncated or damaged. */
export class SegmentFormatError extends Error {
  readonly code = 'HAARSEEK_SEGMENT_INVALID';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`haarseek index segment ${path}: ${reason}; rebuild it from the database`);
    this.name = 'SegmentFormatError';
  }
}

export const alignUp = (n: number, to = SECTION_ALIGN): number => Math.ceil(n / to) * to;

/** CRC-32 (zlib's, as the native reader computes it), continued from `crc`. */
export const crc32: (data: Uint8Array, crc?: number) => number =
  typeof zlibCrc32 === 'function'
    ? // zlib.crc32 answers 0 for a view of an empty ArrayBuffer whatever crc it continues.
      (data, crc = 0) => (data.length === 0 ? crc >>> 0 : zlibCrc32(data, crc))
    : tableCrc32;

let table: Uint32Array | undefined;
/** For Node versions without zlib.crc32 (before 20.15). */
function tableCrc32(data: Uint8Array, crc = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** The file's layout for `count` images and postings of `postingsBytes`. */
export function segmentLayout(
  count: number,
  postingsBytes: number,
): Pick<SegmentHeader, 'chunks' | 'idsOffset' | 'avglOffset' | 'avgl8Offset' | 'postingsOffset' | 'chunkTableOffset' | 'dirOffset' | 'fileBytes'> {
  const chunks = Math.ceil(count / CHUNK_SLOTS);
  const idsOffset = SEGMENT_HEADER_BYTES;
  const avglOffset = alignUp(idsOffset + count * 8);
  const avgl8Offset = alignUp(avglOffset + count * 8 * CHANNELS);
  const postingsOffset = alignUp(avgl8Offset + count * 4);
  const chunkTableOffset = alignUp(postingsOffset + postingsBytes);
  const dirOffset = alignUp(chunkTableOffset + (chunks + 1) * 8);
  const fileBytes = dirOffset + chunks * (SEGMENT_LISTS + 1) * 4;
  return { chunks, idsOffset, avglOffset, avgl8Offset, postingsOffset, chunkTableOffset, dirOffset, fileBytes };
}

export function encodeHeader(h: SegmentHeader): Uint8Array {
  const bytes = new Uint8Array(SEGMENT_HEADER_BYTES);
  const v = new DataView(bytes.buffer);
  bytes.set(SEGMENT_MAGIC, H.magic);
  v.setUint32(H.version, h.version, true);
  v.setUint32(H.byteOrder, SEGMENT_BYTE_ORDER_MARK, true);
  v.setUint32(H.headerBytes, SEGMENT_HEADER_BYTES, true);
  v.setUint32(H.chunkBits, CHUNK_BITS, true);
  v.setUint32(H.lists, SEGMENT_LISTS, true);
  v.setUint32(H.chunks, h.chunks, true);
  const u64 = (at: number, n: number) => v.setBigUint64(at, BigInt(n), true);
  u64(H.count, h.count);
  u64(H.seq, h.seq);
  v.setFloat64(H.dbId, h.dbId, true);
  u64(H.fileBytes, h.fileBytes);
  u64(H.idsOffset, h.idsOffset);
  u64(H.avglOffset, h.avglOffset);
  u64(H.postingsOffset, h.postingsOffset);
  u64(H.postingsBytes, h.postingsBytes);
  u64(H.chunkTableOffset, h.chunkTableOffset);
  u64(H.dirOffset, h.dirOffset);
  v.setUint32(H.bitmapMinPostings, BITMAP_MIN_POSTINGS, true);
  v.setFloat64(H.createdAtMs, h.createdAtMs, true);
  v.setUint32(H.bodyCrc, h.bodyCrc >>> 0, true);
  u64(H.avgl8Offset, h.avgl8Offset);
  for (let c = 0; c < CHANNELS; c++) {
    v.setFloat64(H.avgl8Min + 8 * c, h.avgl8Min[c], true);
    v.setFloat64(H.avgl8Step + 8 * c, h.avgl8Step[c], true);
  }
  v.setUint32(H.flags, h.flags, true);
  v.setUint32(H.headerCrc, crc32(bytes), true);
  return bytes;
}

/**
 * Checks the header of a file of `fileBytes` bytes and returns its fields, or throws
 * SegmentFormatError saying what is wrong. The body checksum and structure are checked
 * by the readers (checkSegmentBody).
 */
export function decodeHeader(bytes: Uint8Array, fileBytes: number, path: string): SegmentHeader {
  const fail = (reason: string): never => {
    throw new SegmentFormatError(path, reason);
  };
  if (fileBytes < SEGMENT_HEADER_BYTES || bytes.length < SEGMENT_HEADER_BYTES) {
    if (fileBytes >= SEGMENT_MAGIC.length && !startsWithMagic(bytes)) fail('not an index segment (wrong magic bytes)');
    fail(`truncated: ${fileBytes} bytes, shorter than the ${SEGMENT_HEADER_BYTES}-byte header`);
  }
  if (!startsWithMagic(bytes)) fail('not an index segment (wrong magic bytes)');
  const v = new DataView(bytes.buffer, bytes.byteOffset, SEGMENT_HEADER_BYTES);
  if (v.getUint32(H.byteOrder, true) !== SEGMENT_BYTE_ORDER_MARK) fail('written with another byte order (or damaged header)');
  const version = v.getUint32(H.version, true);
  if (version !== SEGMENT_VERSION) fail(`format version ${version}, this build reads version ${SEGMENT_VERSION}`);
  const zeroed = bytes.slice(0, SEGMENT_HEADER_BYTES);
  new DataView(zeroed.buffer).setUint32(H.headerCrc, 0, true);
  if (crc32(zeroed) !== v.getUint32(H.headerCrc, true)) fail('damaged header (checksum mismatch)');
  if (v.getUint32(H.headerBytes, true) !== SEGMENT_HEADER_BYTES || v.getUint32(H.chunkBits, true) !== CHUNK_BITS || v.getUint32(H.lists, true) !== SEGMENT_LISTS) {
    fail('unsupported geometry (header size, chunk size or list count)');
  }
  if (v.getUint32(H.bitmapMinPostings, true) !== BITMAP_MIN_POSTINGS) fail('unsupported bitmap threshold');
  const u64 = (at: number) => {
    const n = v.getBigUint64(at, true);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) fail('header field out of range');
    return Number(n);
  };
  const h: SegmentHeader = {
    version,
    chunks: v.getUint32(H.chunks, true),
    count: u64(H.count),
    seq: u64(H.seq),
    dbId: v.getFloat64(H.dbId, true),
    fileBytes: u64(H.fileBytes),
    idsOffset: u64(H.idsOffset),
    avglOffset: u64(H.avglOffset),
    postingsOffset: u64(H.postingsOffset),
    postingsBytes: u64(H.postingsBytes),
    chunkTableOffset: u64(H.chunkTableOffset),
    dirOffset: u64(H.dirOffset),
    createdAtMs: v.getFloat64(H.createdAtMs, true),
    bodyCrc: v.getUint32(H.bodyCrc, true),
    avgl8Offset: u64(H.avgl8Offset),
    avgl8Min: [0, 1, 2].map((c) => v.getFloat64(H.avgl8Min + 8 * c, true)) as [number, number, number],
    avgl8Step: [0, 1, 2].map((c) => v.getFloat64(H.avgl8Step + 8 * c, true)) as [number, number, number],
    flags: v.getUint32(H.flags, true),
  };
  if (h.count > 0xffffffff) fail('too many images');
  const expected = segmentLayout(h.count, h.postingsBytes);
  for (const key of Object.keys(expected) as Array<keyof typeof expected>) {
    if (expected[key] !== h[key]) fail(`inconsistent header (${key})`);
  }
  for (let c = 0; c < CHANNELS; c++) {
    if (!Number.isFinite(h.avgl8Min[c]) || !(h.avgl8Step[c] > 0) || !Number.isFinite(h.avgl8Step[c])) fail('bad avgl quantization');
  }
  if ((h.flags & ~FLAG_NON_FINITE_AVGL) !== 0) fail('unknown flags');
  if (fileBytes < h.fileBytes) fail(`truncated: ${fileBytes} bytes, the header says ${h.fileBytes}`);
  if (fileBytes > h.fileBytes) fail(`${fileBytes} bytes, the header says ${h.fileBytes} (trailing data)`);
  return h;
}

function startsWithMagic(bytes: Uint8Array): boolean {
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) if (bytes[i] !== SEGMENT_MAGIC[i]) return false;
  return true;
}

/** The typed-array views of a segment held in memory (the buffer must be 8-byte aligned). */
export interface SegmentViews {
  ids: Float64Array;
  avglY: Float64Array;
  avglI: Float64Array;
  avglQ: Float64Array;
  /** The postings section as uint16 units and, for bitmaps, as uint32 words. */
  units: Uint16Array;
  words: Uint32Array;
  /** Unit offset of each chunk inside the postings, chunks + 1 entries. */
  chunkUnits: Float64Array;
  dir: Uint32Array;
}

/**
 * Checks the body of a segment held in `buffer` (checksum, then the structure a query
 * relies on) and returns views on it; throws SegmentFormatError.
 */
export function checkSegmentBody(buffer: Uint8Array, h: SegmentHeader, path: string, verifyChecksum = true): SegmentViews {
  const fail = (reason: string): never => {
    throw new SegmentFormatError(path, reason);
  };
  if (buffer.byteOffset % 8 !== 0) throw new Error('segment buffer must be 8-byte aligned');
  if (verifyChecksum && crc32(buffer.subarray(SEGMENT_HEADER_BYTES, h.fileBytes)) !== h.bodyCrc) fail('damaged (checksum mismatch)');
  const ab = buffer.buffer;
  const at = buffer.byteOffset;
  const n = h.count;
  const views: SegmentViews = {
    ids: new Float64Array(ab, at + h.idsOffset, n),
    avglY: new Float64Array(ab, at + h.avglOffset, n),
    avglI: new Float64Array(ab, at + h.avglOffset + n * 8, n),
    avglQ: new Float64Array(ab, at + h.avglOffset + n * 16, n),
    units: new Uint16Array(ab, at + h.postingsOffset, h.postingsBytes >>> 1),
    words: new Uint32Array(ab, at + h.postingsOffset, h.postingsBytes >>> 2),
    chunkUnits: new Float64Array(h.chunks + 1),
    dir: new Uint32Array(ab, at + h.dirOffset, h.chunks * (SEGMENT_LISTS + 1)),
  };
  const ids = views.ids;
  for (let i = 0; i < n; i++) {
    if (!(ids[i] === ids[i]) || (i > 0 && !(ids[i] > ids[i - 1]))) fail('image ids not strictly ascending');
  }
  if (h.postingsBytes % SECTION_ALIGN !== 0) fail('postings size not aligned');
  const table = new DataView(ab, at + h.chunkTableOffset, (h.chunks + 1) * 8);
  for (let c = 0; c <= h.chunks; c++) {
    const off = Number(table.getBigUint64(c * 8, true));
    if (off % SECTION_ALIGN !== 0 || off > h.postingsBytes || (c > 0 && off < views.chunkUnits[c - 1] * 2)) fail('bad chunk table');
    if ((c === 0 && off !== 0) || (c === h.chunks && off !== h.postingsBytes)) fail('bad chunk table');
    views.chunkUnits[c] = off / 2;
  }
  const { units, dir } = views;
  for (let c = 0; c < h.chunks; c++) {
    const base = views.chunkUnits[c];
    const size = views.chunkUnits[c + 1] - base;
    const d = c * (SEGMENT_LISTS + 1);
    const len = Math.min(CHUNK_SLOTS, n - c * CHUNK_SLOTS);
    if (dir[d] !== 0) fail(`bad directory (chunk ${c})`);
    for (let l = 0; l < SEGMENT_LISTS; l++) {
      const s = dir[d + l];
      const e = dir[d + l + 1];
      if (e < s || e > size) fail(`bad directory (chunk ${c}, list ${l})`);
      const span = e - s;
      if (span >= BITMAP_UNITS) {
        if (span > BITMAP_UNITS + 3 || (base + e - BITMAP_UNITS) % 4 !== 0) fail(`bad bitmap (chunk ${c}, list ${l})`);
        if (len < CHUNK_SLOTS) {
          const words = views.words;
          const at = (base + e - BITMAP_UNITS) >>> 1;
          for (let k = len; k < CHUNK_SLOTS; k++) if ((words[at + (k >>> 5)] >>> (k & 31)) & 1) fail(`postings beyond the image count (chunk ${c}, list ${l})`);
        }
      } else if (span > 0) {
        for (let p = base + s + 1; p < base + e; p++) if (units[p] <= units[p - 1]) fail(`postings not ascending (chunk ${c}, list ${l})`);
        if (units[base + e - 1] >= len) fail(`postings beyond the image count (chunk ${c}, list ${l})`);
      }
    }
  }
  return views;
}
