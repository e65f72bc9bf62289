import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ParamError } from '../../src/errors.ts';
import { rawScore } from '../../src/index/scoring.ts';
import { iqdbAddResponse, iqdbJson, iqdbQueryMatch } from '../../src/iqdb/api.ts';
import { IQDB_HASH_LENGTH, IqdbHashError, parseIqdbHash, toIqdbHash } from '../../src/iqdb/hash.ts';
import {
  iqdbBuckets,
  iqdbIsGrayscale,
  iqdbQuery,
  iqdbRawScore,
  iqdbScale,
  iqdbScore,
  iqdbScores,
  iqdbSkipsAsDeleted,
} from '../../src/iqdb/score.ts';
import type { Signature } from '../../src/signature/types.ts';
import { goldenImages } from '../helpers/golden.ts';
import { GOLDEN_DIR } from '../helpers/paths.ts';

interface IqdbPost {
  post_id: number;
  golden_input: string;
  avgl: number[];
  avgl_ieee754_hex: string[];
  sig: number[][];
  hash_from_iqdb_response: string;
  iqdb_treats_as_grayscale: boolean;
}
const fixture = JSON.parse(readFileSync(join(GOLDEN_DIR, 'imports/iqdb.json'), 'utf8')) as {
  posts: IqdbPost[];
  queries: Record<string, { request: string; result_post_id_score: Array<[number, number]> }>;
};

function goldenSignature(file: string): Signature {
  const image = goldenImages.find((g) => g.file === file);
  if (!image) throw new Error(`no golden signature for ${file}`);
  return { avgl: Float64Array.from(image.avgl), coefs: Int32Array.from(image.sig.flat()) };
}

const posts = fixture.posts.map((post) => ({ post, signature: goldenSignature(post.golden_input) }));
const stored = posts.map(({ post, signature }) => ({ postId: post.post_id, signature }));

describe('iqdb hash', () => {
  it.each(posts.map(({ post, signature }) => [post.post_id, post, signature] as const))(
    'post %i: our hash of the golden signature is the one iqdb answered',
    (_id, post, signature) => {
      const hash = toIqdbHash(signature);
      expect(hash).toHaveLength(IQDB_HASH_LENGTH);
      expect(hash).toBe(post.hash_from_iqdb_response);
      expect(hash.slice(5, 53)).toBe(post.avgl_ieee754_hex.join(''));
    },
  );

  it('parses every iqdb hash back to the exact golden signature', () => {
    for (const { post, signature } of posts) {
      const parsed = parseIqdbHash(post.hash_from_iqdb_response);
      expect(Array.from(parsed.avgl)).toEqual(Array.from(signature.avgl));
      expect(Array.from(parsed.coefs)).toEqual(Array.from(signature.coefs));
      expect(Array.from(parsed.coefs)).toEqual(post.sig.flat());
    }
  });

  it('accepts upper-case hex and sorts each channel as iqdb does', () => {
    const hash = posts[0].post.hash_from_iqdb_response;
    const upper = `iqdb_${hash.slice(5).toUpperCase()}`;
    expect(Array.from(parseIqdbHash(upper).coefs)).toEqual(Array.from(posts[0].signature.coefs));
    // Swap the first two Y coefficients: the parser sorts them back.
    const body = hash.slice(53);
    const swapped = `${hash.slice(0, 53)}${body.slice(4, 8)}${body.slice(0, 4)}${body.slice(8)}`;
    expect(Array.from(parseIqdbHash(swapped).coefs)).toEqual(Array.from(posts[0].signature.coefs));
  });

  const good = posts[0].post.hash_from_iqdb_response;
  const coefAt = (k: number, hex: string) => good.slice(0, 53 + 4 * k) + hex + good.slice(53 + 4 * k + 4);
  it.each([
    ['not a string', 42, /expected a string/],
    ['empty', '', /must start with "iqdb_"/],
    ['wrong prefix', `iqdx_${good.slice(5)}`, /must start with "iqdb_"/],
    ['too short', good.slice(0, -1), /533 characters long, got 532/],
    ['too long', `${good}0`, /533 characters long, got 534/],
    ['not hex', `${good.slice(0, 20)}g${good.slice(21)}`, /character 21 \("g"\) is not a hex digit/],
    ['NaN avgl', `iqdb_7ff8000000000000${good.slice(21)}`, /avgl value 1 is NaN/],
    ['coefficient 0', coefAt(0, '0000'), /coefficient 1 of channel Y is 0/],
    ['coefficient out of the 128x128 range', coefAt(41, '4000'), /coefficient 2 of channel I is 16384/],
    ['duplicate index', coefAt(1, good.slice(53, 57)), /lists coefficient index 1409 twice/],
    ['same index with both signs', coefAt(1, '0581'), /lists coefficient index 1409 twice/],
  ])('rejects a hash that is %s with a parameter error', (_what, text, message) => {
    let error: unknown;
    try {
      parseIqdbHash(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(IqdbHashError);
    expect(error).toBeInstanceOf(ParamError);
    expect((error as Error).message).toMatch(/^invalid iqdb hash: /);
    expect((error as Error).message).toMatch(message);
  });
});

describe('iqdb score', () => {
  const query = posts[0].signature; // inputs/01.png = post 101, the query the fixture recorded
  const recorded = fixture.queries.query_file_01_limit24.result_post_id_score;
  // After post 109 iqdb returned junk rows from uninitialised slots (see the fixture's note).
  const real = recorded.slice(0, recorded.findIndex(([id]) => id > 124));
  const junkScore = recorded[real.length][1];

  it('agrees with the fixture on which posts iqdb treats as grayscale', () => {
    for (const { post, signature } of posts) expect(iqdbIsGrayscale(signature.avgl)).toBe(post.iqdb_treats_as_grayscale);
  });

  it("reproduces iqdb's recorded result list, order and float32 scores, bit for bit", () => {
    expect(real.length).toBe(13);
    const ours = iqdbQuery(query, stored, 24);
    expect(ours.slice(0, real.length).map((m) => [m.postId, m.score])).toEqual(real);
    // Every other real image scored below the junk rows iqdb put ahead of them.
    for (const m of ours.slice(real.length)) expect(m.score).toBeLessThan(junkScore);
  });

  it('gives the same answers for the limit-5 file query and the hash query after reload', () => {
    for (const name of ['query_file_01_limit5', 'query_hash101_after_reload_limit5']) {
      const byHash = parseIqdbHash(posts[0].post.hash_from_iqdb_response);
      expect(iqdbQuery(byHash, stored, 5).map((m) => [m.postId, m.score])).toEqual(fixture.queries[name].result_post_id_score);
    }
  });

  it('maps raw scores to scores with the query’s own scale: self-match = 100', () => {
    const scale = iqdbScale(query, iqdbBuckets(stored.map((s) => s.signature)));
    expect(scale).toBeLessThan(0);
    expect(iqdbScore(iqdbRawScore(query, query), query)).toBe(100);
    const raws = real.map(([id]) => iqdbRawScore(query, stored.find((s) => s.postId === id)!.signature));
    expect(Array.from(iqdbScores(raws, query))).toEqual(real.map(([, score]) => score));
  });

  it("is close to iqdb's score when fed haarseek's float64 imgSeek raw score (colour images)", () => {
    for (const { signature } of stored) {
      if (iqdbIsGrayscale(signature.avgl)) continue;
      const exact = iqdbScore(iqdbRawScore(query, signature), query);
      expect(Math.abs(iqdbScore(rawScore(query, signature), query) - exact)).toBeLessThan(1e-4);
    }
  });

  it('scores a grayscale query on Y only and keeps grayscale images out of I/Q buckets', () => {
    const gray = posts.find(({ post }) => post.iqdb_treats_as_grayscale)!.signature;
    const colour = posts[0].signature;
    // Only the Y term and Y coefficients count: changing I/Q of the stored image does nothing.
    const shiftedIQ: Signature = { avgl: Float64Array.of(colour.avgl[0], 5, -5), coefs: colour.coefs.map((v, k) => (k < 40 ? v : 16000 - (k % 40))) };
    expect(iqdbRawScore(gray, shiftedIQ)).toBe(iqdbRawScore(gray, { avgl: Float64Array.of(colour.avgl[0], 0.5, 0.5), coefs: colour.coefs }));
    // A grayscale stored copy of a colour query matches its Y coefficients only.
    const grayCopy: Signature = { avgl: Float64Array.of(colour.avgl[0], 0, 0), coefs: colour.coefs };
    expect(iqdbRawScore(colour, grayCopy)).toBeGreaterThan(iqdbRawScore(colour, colour));
    expect(iqdbBuckets([grayCopy])(1, colour.coefs[40])).toBe(false);
    expect(iqdbBuckets([grayCopy])(0, colour.coefs[0])).toBe(true);
  });

  it('uses only non-empty buckets for the scale, and skips images with a zero Y average', () => {
    const full = iqdbScale(query);
    const half = iqdbScale(query, (channel) => channel === 0);
    expect(half).toBeGreaterThan(full);
    expect(iqdbScale(query, () => false)).toBe(0);
    const black: Signature = { avgl: Float64Array.of(0, 0, 0), coefs: query.coefs };
    expect(iqdbSkipsAsDeleted(black)).toBe(true);
    expect(iqdbQuery(query, [{ postId: 1, signature: black }], 5)).toEqual([]);
  });
});

describe('iqdb JSON shapes', () => {
  it("builds POST /images/:id's answer as iqdb does", () => {
    const { post, signature } = posts[0];
    const body = iqdbAddResponse(post.post_id, signature);
    expect(Object.keys(body)).toEqual(['hash', 'post_id', 'signature']);
    expect(body).toEqual({ hash: post.hash_from_iqdb_response, post_id: 101, signature: { avglf: post.avgl, sig: post.sig } });
    expect(iqdbJson(body)).toMatch(/^\{\n {4}"hash": "iqdb_/);
  });

  it('builds a query match with the stored signature', () => {
    const m = iqdbQueryMatch(113, 95.71839141845703, posts[12].signature);
    expect(Object.keys(m)).toEqual(['hash', 'post_id', 'score', 'signature']);
    expect(m.hash).toBe(posts[12].post.hash_from_iqdb_response);
  });
});
