/**
 * iskdaemon's database file (imgdb.cpp savedb/savealldbs, iskdaemon 0.7 .. 0.9.5 on
 * 64-bit Linux/macOS): a raw little-endian memory dump with no magic number.
 *
 *   header      int32 isVersioned=1, iskVersion, bindingLang, [isTrial if iskVersion < 3], compilePlat
 *   savealldbs  int32 space count, then per space (ascending id): int32 space id, space body
 *   savedb      one space body (no count, no id)
 *   space body  98304 buckets [channel Y,I,Q][sign +,-][index 0..16383]: int32 n, n x int64 image id;
 *               uint64 image count; per image (ascending id) a 520-byte DiskSigStruct
 *               (int64 id, int32 sig[3][40], double avgl[3], int32 width, int32 height),
 *               then int32 keyword count and the int32 keywords (hash_set order).
 *               iskVersion 1 records are 528 bytes (a double score before width) with no keywords.
 *
 * See ../shared/golden/imports/iskdaemon-0.9.5.json for the byte map of a real file.
 */
export const SRZ_VERSIONED = 1;
export const SRZ_V0_5_1 = 1;
export const SRZ_V0_6_0 = 2;
export const SRZ_V0_7_0 = 3;
export const SRZ_LANG_PYTHON = 1;
export const SRZ_LANG_JAVA = 2;
export const SRZ_PLAT_WINDOWS = 1;
export const SRZ_PLAT_LINUX = 2;

export const HEADER_BYTES = 16;
export const COEF_SIDE = 16384;
export const BUCKETS = 3 * 2 * COEF_SIDE;
/** DiskSigStruct on LP64. */
export const RECORD_BYTES = 520;
/** sigStructV06 on LP64 (iskVersion 1). */
export const RECORD_V06_BYTES = 528;
export const OFF_SIGS = 8;
export const OFF_AVGL = 488;
export const OFF_WIDTH = 512;
export const OFF_HEIGHT = 516;
export const OFF_V06_WIDTH = 520;
export const OFF_V06_HEIGHT = 524;
/** An empty space body: every bucket count 0, image count 0. */
export const EMPTY_BODY_BYTES = BUCKETS * 4 + 8;
/** Largest id haarseek stores (ids outside 1..2^53-1 are refused everywhere). */
export const MAX_ID = Number.MAX_SAFE_INTEGER;

export type IskForm = 'savealldbs' | 'savedb';

export interface IskHeader {
  iskVersion: number;
  bindingLang: number;
  /** Only in iskVersion 1 and 2 headers. */
  isTrial: number | null;
  compilePlat: number;
  /** Header length: 16 bytes, 20 with isTrial. */
  bytes: number;
}

/** "Y+123": a bucket's channel, sign and coefficient index, for messages. */
export function bucketName(b: number): string {
  return `${'YIQ'[b >> 15]}${(b >> 14) & 1 ? '-' : '+'}${b & (COEF_SIDE - 1)}`;
}

/** The bucket a signed coefficient of a channel is listed in. */
export function bucketOf(channel: number, coef: number): number {
  return coef > 0 ? channel * 2 * COEF_SIDE + coef : (channel * 2 + 1) * COEF_SIDE - coef;
}

/**
 * One term of the order-independent checksum that ties the bucket section to the
 * signature records: the sum over (bucket, image id) pairs must come out the same
 * whether summed from the buckets or from the records. id = hi * 2^32 + lo.
 */
export function pairHash(b: number, lo: number, hi: number): number {
  let h = Math.imul(b ^ 0x5bd1e995, 0x85ebca6b) ^ lo;
  h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35) ^ hi;
  h = Math.imul(h ^ (h >>> 13), 0x27d4eb2f);
  return (h ^ (h >>> 15)) >>> 0;
}

// libstdc++'s __gnu_cxx::hash_set<int> (iskdaemon's int_hashset): a chained table whose
// bucket count is the first of these primes >= max(size, 100), hash(k) = size_t(k),
// iterated bucket by bucket; a new element goes to the front of its bucket's chain.
const HASH_PRIMES = [
  5, 53, 97, 193, 389, 769, 1543, 3079, 6151, 12289, 24593, 49157, 98317, 196613, 393241, 786433, 1572869, 3145739,
  6291469, 12582917, 25165843, 50331653, 100663319, 201326611, 402653189, 805306457, 1610612741, 3221225473,
  4294967291,
];
const TWO_64_MOD = new Map<number, number>();

function hashBucket(k: number, n: number): number {
  if (k >= 0) return k % n;
  let m = TWO_64_MOD.get(n);
  if (m === undefined) {
    m = Number((1n << 64n) % BigInt(n));
    TWO_64_MOD.set(n, m);
  }
  return (((m + (k % n)) % n) + n) % n;
}

/**
 * The order iskdaemon 0.9.5 writes an image's keywords in (its hash_set iteration order,
 * 64-bit libstdc++). Keywords sharing a hash bucket come in reverse insertion order; for
 * a set with no recorded order they are taken as inserted ascending.
 */
export function hashSetOrder(keywords: ArrayLike<number>): number[] {
  const size = keywords.length;
  if (size < 2) return Array.from(keywords);
  const n = HASH_PRIMES.find((p) => p >= Math.max(size, 100)) ?? HASH_PRIMES[HASH_PRIMES.length - 1];
  return Array.from(keywords).sort((a, b) => hashBucket(a, n) - hashBucket(b, n) || b - a);
}

/** Names a file by its first bytes when it is something other than an iskdaemon file. */
export function describeForeign(head: Uint8Array): string | null {
  const starts = (...bytes: number[]) => bytes.every((v, i) => head[i] === v);
  const ascii = (s: string, at = 0) => [...s].every((ch, i) => head[at + i] === ch.charCodeAt(0));
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'a PNG image';
  if (starts(0xff, 0xd8, 0xff)) return 'a JPEG image';
  if (ascii('GIF87a') || ascii('GIF89a')) return 'a GIF image';
  if (ascii('RIFF') && ascii('WEBP', 8)) return 'a WebP image';
  if (ascii('ftyp', 4)) return 'an ISO media file (AVIF/HEIF/MP4)';
  if (starts(0x49, 0x49, 0x2a, 0x00) || starts(0x4d, 0x4d, 0x00, 0x2a)) return 'a TIFF image';
  if (ascii('BM')) return 'a BMP image';
  if (ascii('SQLite format 3\0')) return 'a SQLite database';
  if (starts(0x1f, 0x8b)) return 'a gzip-compressed file';
  if (ascii('PK\x03\x04')) return 'a zip archive';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'a zstd-compressed file';
  if (ascii('BZh')) return 'a bzip2-compressed file';
  if (ascii('%PDF')) return 'a PDF document';
  if (head.length > 0 && head.every((v) => v === 0x09 || v === 0x0a || v === 0x0d || (v >= 0x20 && v < 0x7f) || v >= 0x80)) {
    return head[0] === 0x3c ? 'an XML/HTML/SVG text file' : 'a text file';
  }
  return null;
}
