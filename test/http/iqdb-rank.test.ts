import { describe, expect, it } from 'vitest';
import { rankLikeIqdb } from '../../src/http/iqdb-rank.ts';
import { iqdbQuery, iqdbRawScore } from '../../src/iqdb/score.ts';
import type { Service } from '../../src/service/service.ts';
import type { Signature } from '../../src/signature/types.ts';
import { prng } from '../../scripts/lib/prng.ts';

/**
 * rankLikeIqdb re-scores the index's candidates with iqdb's score. With more images than
 * candidates it cannot know every bucket, and takes them all as filled: the answer is
 * iqdb's whenever the query's buckets all hold an image, e.g. when the query is stored.
 */
function randomSignature(next: () => number, grayscale: boolean): Signature {
  const coefs = new Int32Array(120);
  for (let c = 0; c < 3; c++) {
    const seen = new Set<number>();
    while (seen.size < 40) seen.add(1 + Math.floor(next() * 400)); // few indices: images share many
    const channel = [...seen].map((i) => (next() < 0.5 ? -i : i)).sort((a, b) => a - b);
    coefs.set(channel, c * 40);
  }
  const avgl = Float64Array.from([0.1 + next() * 0.8, grayscale ? 0.001 : next() * 0.2 - 0.1, grayscale ? 0.001 : next() * 0.2 - 0.1]);
  return { avgl, coefs };
}

/** A service holding one space of these signatures; its index proposes candidates by iqdb's own raw score. */
function fakeService(images: Map<number, Signature>, maxResults: number): Service {
  let queries = 0;
  const search = {
    hasSpace: (space: number) => space === 1,
    imageCount: () => images.size,
    imageIds: () => [...images.keys()].sort((a, b) => a - b),
    signature: (_space: number, id: number) => images.get(id)!,
    bySignature: (_space: number, sig: Signature, o: { limit: number }) =>
      [...images].map(([id, s]) => [id, iqdbRawScore(sig, s)] as [number, number]).sort((a, b) => a[1] - b[1] || a[0] - b[0]).slice(0, o.limit),
    maxResults,
  };
  const stats = { of: () => ({ countQuery: () => queries++ }) };
  return { search, stats } as unknown as Service;
}

describe('rankLikeIqdb', () => {
  const next = prng(20240611);
  const images = new Map<number, Signature>();
  for (let id = 1; id <= 600; id++) images.set(id * 3, randomSignature(next, id % 5 === 0));
  const all = [...images].map(([postId, signature]) => ({ postId, signature }));

  it('in a space larger than the candidate set, gives iqdb\'s answer for a stored query (colour and grayscale)', () => {
    const service = fakeService(images, 1000);
    for (const id of [3, 15, 300, 1200, 1797]) {
      const query = images.get(id)!;
      const ranked = rankLikeIqdb(service, 1, query, 20);
      expect(ranked.map(({ postId, score }) => ({ postId, score }))).toEqual(iqdbQuery(query, all, 20));
      expect(ranked[0].postId).toBe(id);
      expect(ranked[0].signature).toBe(query);
    }
  });

  it('in a space the candidate set covers, scores every image with the buckets it really fills', () => {
    const small = new Map([...images].slice(0, 50));
    const smallAll = [...small].map(([postId, signature]) => ({ postId, signature }));
    const query = randomSignature(next, false); // not stored: some of its buckets are empty
    const ranked = rankLikeIqdb(fakeService(small, 1000), 1, query, 10);
    expect(ranked.map(({ postId, score }) => ({ postId, score }))).toEqual(iqdbQuery(query, smallAll, 10));
  });

  it('answers [] for a space that does not exist yet', () => {
    expect(rankLikeIqdb(fakeService(images, 1000), 2, images.get(3)!, 5)).toEqual([]);
  });
});
