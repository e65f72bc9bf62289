import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEngine } from '../../src/engine.ts';
import { decodeToRgb128 } from '../../src/image/decode.ts';
import { apiScore } from '../../src/signature/weights.ts';
import { type ServerProcess, rpcClient, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';
import { CARDS_DIR, cardQuery } from '../query-stage/corpus-index.ts';

/** Phone photos of cards that imgSeek's own ranking gets wrong at rank 1 (test/query-stage). */
const PHONE_MISSES = [109, 1183, 857];

describe('the ranking contract through XML-RPC: verified by default, --ranking imgseek exactly imgSeek', () => {
  const dataDir = tempDataDir();
  let writer: ServerProcess;
  let imgseekReader: ServerProcess;
  const cards = readdirSync(join(CARDS_DIR, 'originals')).filter((f) => f.endsWith('.jpg')).map((f) => Number(f.slice(0, -4)));

  beforeAll(async () => {
    writer = await startServerProcess('writer', dataDir);
    const w = rpcClient(writer.url);
    await Promise.all([0, 1, 2, 3].map(async (lane) => {
      for (let i = lane; i < cards.length; i += 4) await w('addImgBlob', 1, cards[i], readFileSync(join(CARDS_DIR, 'originals', `${String(cards[i]).padStart(5, '0')}.jpg`)));
    }));
    imgseekReader = await startServerProcess('reader', dataDir, { writerUrl: writer.url, extraArgs: ['--ranking', 'imgseek'] });
  });
  afterAll(async () => {
    await stopProcess(imgseekReader);
    await stopProcess(writer);
  });

  for (const id of PHONE_MISSES) {
    it(`a phone photo of card ${id}: the verified ranking puts it first, sorted by the score it reports`, async () => {
      const results: Array<[number, number]> = await rpcClient(writer.url)('queryImgBlob', 1, cardQuery(id, 'phone'), 5);
      expect(results[0][0]).toBe(id);
      expect(results).toHaveLength(6);
      for (let k = 1; k < results.length; k++) expect(results[k][1]).toBeLessThanOrEqual(results[k - 1][1]);
    });
  }

  it("--ranking imgseek answers imgSeek's ids, order and scores exactly", async () => {
    const engine = loadEngine();
    const query = cardQuery(PHONE_MISSES[0], 'phone');
    const answered: Array<[number, number]> = await rpcClient(imgseekReader.url)('queryImgBlob', 1, query, 9);
    // The same ranking computed here, from the stored images' signatures.
    const sig = engine.signatures.signatureFromRgb((await decodeToRgb128(query)).rgb);
    const index = engine.createIndex();
    for (const id of cards) {
      const stored = engine.signatures.signatureFromRgb((await decodeToRgb128(readFileSync(join(CARDS_DIR, 'originals', `${String(id).padStart(5, '0')}.jpg`)))).rgb);
      index.add(id, stored);
    }
    const expected = index.query(sig, { limit: 10 }).map(([id, raw]) => [id, apiScore(raw)]);
    expect(answered).toEqual(expected);
    expect(answered[0][0]).not.toBe(PHONE_MISSES[0]);
  });
});
