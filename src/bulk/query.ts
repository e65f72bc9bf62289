import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadEngine } from '../engine.ts';
import { DEFAULT_DECODE_LIMITS, decodeToRgb128 } from '../image/decode.ts';
import { IndexCatalog } from '../index/catalog.ts';
import { databasePath } from '../server/config.ts';
import { apiScore } from '../signature/weights.ts';
import { openReadOnly } from '../store/open.ts';
import { StoreQueries } from '../store/queries.ts';
import { rankVerified } from '../query-stage/rank.ts';
import type { Ranking } from '../service/context.ts';
import { BulkError } from './errors.ts';
import type { ServerClient } from './server-client.ts';

export interface QueryHit {
  id: number;
  /** The ranking's score, 0..100 (as the JSON API answers). */
  score: number;
}

/** Ranks one image file: its hits best first, or a message saying why it could not be. */
export type Ranker = (file: string) => Promise<{ results: QueryHit[] } | { error: string }>;

/**
 * A ranker on a data directory: the space's signatures are loaded once, read-only (as a
 * reader loads them, so a writer may run meanwhile), and each file is decoded here.
 */
export function dataDirRanker(dataDir: string, space: number, numres: number, ranking: Ranking): Ranker {
  const dir = resolve(dataDir);
  const dbPath = databasePath(dir);
  if (!existsSync(dbPath)) throw new BulkError(`there is no haarseek database in ${dir} (${dbPath} does not exist)`);
  const engine = loadEngine();
  const db = openReadOnly(dbPath, 30_000);
  const catalog = new IndexCatalog(() => engine.createIndex());
  try {
    const queries = new StoreQueries(db);
    if (!queries.hasSpace(space)) {
      const spaces = queries.spaceIds();
      throw new BulkError(`database space ${space} does not exist in ${dir} (${spaces.length ? `spaces: ${spaces.join(', ')}` : 'it holds no space'})`);
    }
    catalog.reloadFrom(queries, new Set([space]));
  } catch (err) {
    db.close();
    throw err;
  }
  // Kept open for the verified ranking's thumbnails; closed with the process.
  const queries = new StoreQueries(db);
  const index = catalog.get(space)!;
  return async (file) => {
    try {
      const bytes = await readFile(file);
      if (ranking === 'verified') {
        const thumbnailOf = (id: number) => queries.thumbnail(space, id);
        const ranked = await rankVerified({ index, signatures: engine.signatures, limit: numres, thumbnailOf, bytes, decodeLimits: DEFAULT_DECODE_LIMITS });
        return { results: ranked.results.map(({ id, score }) => ({ id, score })) };
      }
      const decoded = await decodeToRgb128(bytes, DEFAULT_DECODE_LIMITS);
      const sig = engine.signatures.signatureFromRgb(decoded.rgb);
      return { results: index.query(sig, { limit: numres }).map(([id, raw]) => ({ id, score: apiScore(raw) })) };
    } catch (err) {
      return { error: (err as Error).message };
    }
  };
}

/** A ranker through a running server: POST /api/v1/spaces/:space/search with the file's bytes. */
export function serverRanker(client: ServerClient, space: number, numres: number, ranking: Ranking): Ranker {
  return async (file) => {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      return { error: (err as Error).message };
    }
    if (bytes.length === 0) return { error: 'the image is empty (0 bytes)' };
    const answer = await client.search(space, bytes, numres, ranking);
    if (answer.ok) return { results: answer.value.results.map(({ id, score }) => ({ id, score })) };
    // The space or the server is wrong for every file alike: stop at the first.
    if (answer.error.code === 'unknownSpace' || answer.error.code === 'methodNotFound' || answer.error.code === 'invalidParams') {
      throw new BulkError(`${client.origin}: ${answer.error.message}`);
    }
    return { error: answer.error.message };
  };
}

/** The lines `haarseek query` prints for one file (text form). */
export function describeHits(file: string, hits: QueryHit[]): string[] {
  if (hits.length === 0) return [`${file}: no results (the space is empty)`];
  const idWidth = Math.max(2, ...hits.map((h) => String(h.id).length));
  return [`${file}:`, ...hits.map((h, k) => `${String(k + 1).padStart(4)}  ${String(h.id).padStart(idWidth)}  ${h.score.toFixed(2).padStart(6)}`)];
}
