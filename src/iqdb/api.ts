/**
 * The JSON bodies of danbooru/iqdb's HTTP server (src/server.cpp at 109444c), as types
 * and pure builders, so haarseek's iqdb routes answer in exactly iqdb's shapes. The
 * routes themselves, and what each answers, are described in README.md here.
 */
import { CHANNELS, COEFS_PER_CHANNEL, type Signature } from '../signature/types.ts';
import { toIqdbHash } from './hash.ts';

/** `signature` member of iqdb's answers (server.cpp:94-97, :145-148). */
export interface IqdbSignatureJson {
  /** Y, I, Q DC values, full double precision. */
  avglf: [number, number, number];
  /** Three arrays (Y, I, Q) of 40 signed coefficient indices, ascending. */
  sig: [number[], number[], number[]];
}

/** `POST /images/:id` → 200 (server.cpp:91-100). */
export interface IqdbAddResponse {
  hash: string;
  post_id: number;
  signature: IqdbSignatureJson;
}

/** `DELETE /images/:id` → 200, also when the post was not there (server.cpp:109-113). */
export interface IqdbDeleteResponse {
  post_id: number;
}

/** One element of `POST /query`'s 200 array, best first (server.cpp:141-149). */
export interface IqdbQueryMatch {
  hash: string;
  post_id: number;
  /** float32 widened to a JSON number; 100 for an exact match, may be negative. */
  score: number;
  signature: IqdbSignatureJson;
}

/** `GET /status` → 200 (server.cpp:158-161). */
export interface IqdbStatusResponse {
  /** In iqdb this is m_info.size(), not the image count (it grows in steps of 50000). */
  images: number;
}

/**
 * What iqdb answers for every error, with HTTP 500 (server.cpp:168-182):
 * `exception` is the demangled C++ type (e.g. "iqdb::param_error").
 */
export interface IqdbErrorResponse {
  exception: string;
  message: string;
  backtrace: string;
}

export function iqdbSignatureJson(sig: Signature): IqdbSignatureJson {
  const channel = (c: number) => Array.from(sig.coefs.subarray(c * COEFS_PER_CHANNEL, (c + 1) * COEFS_PER_CHANNEL));
  const avglf = Array.from(sig.avgl.subarray(0, CHANNELS)) as [number, number, number];
  return { avglf, sig: [channel(0), channel(1), channel(2)] };
}

export function iqdbAddResponse(postId: number, sig: Signature): IqdbAddResponse {
  return { hash: toIqdbHash(sig), post_id: postId, signature: iqdbSignatureJson(sig) };
}

export function iqdbDeleteResponse(postId: number): IqdbDeleteResponse {
  return { post_id: postId };
}

/** `stored` is the matched image's stored signature (iqdb reads it back from its database). */
export function iqdbQueryMatch(postId: number, score: number, stored: Signature): IqdbQueryMatch {
  return { hash: toIqdbHash(stored), post_id: postId, score, signature: iqdbSignatureJson(stored) };
}

export function iqdbStatusResponse(images: number): IqdbStatusResponse {
  return { images };
}

/** iqdb's error body; haarseek has no C++ backtrace to give, so `backtrace` is "". */
export function iqdbErrorResponse(exception: string, message: string): IqdbErrorResponse {
  return { exception, message, backtrace: '' };
}

/** iqdb's exception type names (include/iqdb/imgdb.h:55-61, what server.cpp:169 reports). */
export const IQDB_EXCEPTIONS = {
  /** missing `file`/`hash`, bad hash length */
  param: 'iqdb::param_error',
  /** not a JPEG, undecodable JPEG (resizer.cpp:44-53) */
  image: 'iqdb::image_error',
  /** std::stoi on a non-numeric `limit` */
  invalidArgument: 'std::invalid_argument',
  /** std::stoi on an id or `limit` beyond 2^31-1 */
  outOfRange: 'std::out_of_range',
} as const;

/**
 * Serialises like iqdb's `json::dump(4)` as far as a JSON reader can tell: 4-space
 * indent, keys in the builders' (alphabetical, nlohmann's std::map) order. nlohmann
 * writes an integral float as `100.0` where JSON.stringify writes `100`; both parse to
 * the same number.
 */
export function iqdbJson(body: unknown): string {
  return JSON.stringify(body, null, 4);
}
