/**
 * Card recall benchmark: the imgSeek ranking (plain signature query) against the
 * verified ranking (query stage: variants, rectification, thumbnail check), in-process.
 *
 * Indexes the originals of corpus/cards-dev and, as distractors, of corpus/dev (ids
 * offset by DEV_ID_OFFSET), with thumbnails made at ingest; queries every query file of
 * both sets and prints recall@1 and @10 per distortion, lenient by group (cards-dev's
 * manifest `group`), and the median query time of each ranking, decode included.
 *
 *   npx tsx scripts/bench-cards.ts [--engine ts|native] [--every N] [--no-cascade]
 *                                  [--distractors N] [--corpus DIR]
 *
 * `--every N` keeps one query in N (quick runs); `--failures` lists the scored queries
 * the verified ranking gets wrong at rank 1; `--only REGEX` keeps the query files whose
 * path matches; `--check-depth N` sets how many candidates the check re-ranks. `--distractors N` adds N synthetic
 * signatures (scripts/lib/variant-signatures.ts: crops, flips, recolourings, mixes and
 * perturbations of the dev photos), without thumbnails, so query times are those of an
 * N-image index (1,000,000 for the figure). The engine defaults to native when
 * the addon loads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadEngine, nativeEngine, tsEngine, type Engine } from '../src/engine.ts';
import { decodeToRgb128 } from '../src/image/decode.ts';
import { decodeForIngest } from '../src/image/decode-ingest.ts';
import { rankVerified, type VerifiedRanking } from '../src/query-stage/rank.ts';
import { THUMB_BYTES } from '../src/query-stage/thumbnail.ts';
import { SIGNATURE_LENGTH } from '../src/signature/types.ts';
import { variantSignatures } from './lib/variant-signatures.ts';

const DEV_ID_OFFSET = 1_000_000;
const DISTRACTOR_ID_OFFSET = 10_000_000;
const BATCH = 4096;

const { values: args } = parseArgs({
  options: {
    engine: { type: 'string' },
    every: { type: 'string', default: '1' },
    'no-cascade': { type: 'boolean', default: false },
    distractors: { type: 'string', default: '0' },
    'distractor-thumbnails': { type: 'string', default: 'random' },
    failures: { type: 'boolean', default: false },
    only: { type: 'string' },
    'check-depth': { type: 'string' },
    corpus: { type: 'string', default: process.env.HAARSEEK_CORPUS ?? join(import.meta.dirname, '../../shared/corpus') },
  },
});

function csv(file: string): Array<Record<string, string>> {
  const [header, ...rows] = readFileSync(file, 'utf8').trim().split(/\r?\n/);
  const names = header.split(',');
  // The columns used here hold no comma.
  return rows.map((line) => Object.fromEntries(line.split(',').slice(0, names.length).map((v, i) => [names[i], v])));
}

interface Query {
  set: 'cards' | 'dev';
  file: string;
  distortion: string;
  expected: number;
  scored: boolean;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const engine: Engine = args.engine === 'ts' ? tsEngine() : args.engine === 'native' ? nativeEngine() : loadEngine();
  const corpus = args.corpus!;
  const cardsDir = join(corpus, 'cards-dev');
  const devDir = join(corpus, 'dev');
  const every = Math.max(1, Number(args.every));

  // Ingest: originals of both sets, signature + thumbnail from one decode.
  const group = new Map<number, number>();
  const originals: Array<{ id: number; path: string }> = [];
  for (const r of csv(join(cardsDir, 'manifest.csv'))) {
    originals.push({ id: Number(r.id), path: join(cardsDir, r.file) });
    group.set(Number(r.id), Number(r.group || r.id));
  }
  for (const r of csv(join(devDir, 'manifest.csv'))) {
    const id = Number(r.id) + DEV_ID_OFFSET;
    originals.push({ id, path: join(devDir, r.file) });
    group.set(id, id);
  }
  const index = engine.createIndex();
  const thumbs = new Map<number, Uint8Array>();
  const ingestMs: number[] = [];
  const plainIngestMs: number[] = [];
  for (const { id, path } of originals) {
    const bytes = readFileSync(path);
    let t0 = performance.now();
    await decodeToRgb128(bytes);
    plainIngestMs.push(performance.now() - t0);
    t0 = performance.now();
    const decoded = await decodeForIngest(bytes);
    ingestMs.push(performance.now() - t0);
    index.add(id, engine.signatures.signatureFromRgb(decoded.rgb));
    thumbs.set(id, decoded.thumbnail);
  }
  const distractors = Math.max(0, Math.floor(Number(args.distractors)));
  if (distractors > 0) {
    process.stderr.write(`generating ${distractors} distractor signatures\n`);
    const set = await variantSignatures({ count: distractors, imageVariants: Math.min(distractors, 10_000), engine: engine.signatures, seed: 1 });
    const coefs = new Int16Array(BATCH * SIGNATURE_LENGTH);
    const ids = new Float64Array(BATCH);
    for (let start = 0; start < set.count; start += BATCH) {
      const count = Math.min(BATCH, set.count - start);
      for (let k = 0; k < count; k++) ids[k] = DISTRACTOR_ID_OFFSET + start + k;
      coefs.set(set.coefs.subarray(start * SIGNATURE_LENGTH, (start + count) * SIGNATURE_LENGTH));
      index.addBatch({ count, ids, avgl: set.avgls.subarray(start * 3, (start + count) * 3), coefs });
    }
    index.trim();
    for (let k = 0; k < distractors; k++) group.set(DISTRACTOR_ID_OFFSET + k, DISTRACTOR_ID_OFFSET + k);
  }
  const devThumbs = [...thumbs].filter(([id]) => id >= DEV_ID_OFFSET).map(([, t]) => t);
  const withDistractorThumbs = args['distractor-thumbnails'] !== 'none';
  const thumbnailOf = (id: number): Uint8Array | undefined => {
    if (id < DISTRACTOR_ID_OFFSET) return thumbs.get(id);
    // A fixed pseudo-random dev photo per distractor.
    return withDistractorThumbs ? devThumbs[(Math.imul(id, 0x9e3779b1) >>> 0) % devThumbs.length] : undefined;
  };
  process.stdout.write(
    `indexed ${index.size} images (${engine.name} engine): ${originals.length} originals with thumbnails, ${distractors} synthetic distractors ` +
      `${distractors === 0 ? '' : withDistractorThumbs ? "with an unrelated dev photo's thumbnail" : 'without thumbnails'}; ` +
      `thumbnail ${THUMB_BYTES} bytes; decode per image: signature only ${median(plainIngestMs).toFixed(2)} ms, ` +
      `signature + thumbnail ${median(ingestMs).toFixed(2)} ms (medians)\n`,
  );

  const queries: Query[] = [];
  for (const r of csv(join(cardsDir, 'truth.csv'))) {
    queries.push({ set: 'cards', file: join(cardsDir, r.query), distortion: r.distortion, expected: Number(r.expected_id), scored: r.scored !== '0' });
  }
  for (const r of csv(join(devDir, 'truth.csv'))) {
    queries.push({ set: 'dev', file: join(devDir, r.query), distortion: r.distortion, expected: Number(r.expected_id) + DEV_ID_OFFSET, scored: r.distortion !== 'flip' });
  }
  const only = args.only ? new RegExp(args.only) : undefined;
  const picked = queries.filter((q, i) => i % every === 0 && (!only || only.test(q.file)));

  interface Cell { n: number; plain1: number; plain10: number; ver1: number; ver10: number; stage1: number; stage2: number }
  const cells = new Map<string, Cell>();
  const plainMs: number[] = [];
  const verifiedMs: number[] = [];
  const stageMs = { plain: [] as number[], card: [] as number[], variants: [] as number[] };
  const hit = (ids: number[], expected: number, k: number) => ids.slice(0, k).some((id) => group.get(id) === group.get(expected));
  const started = performance.now();
  let done = 0;
  for (const q of picked) {
    const bytes = readFileSync(q.file);
    let t0 = performance.now();
    const { rgb } = await decodeToRgb128(bytes);
    const plain = index.query(engine.signatures.signatureFromRgb(rgb), { limit: 10 }).map(([id]) => id);
    plainMs.push(performance.now() - t0);
    t0 = performance.now();
    const ranking: VerifiedRanking = await rankVerified({
      bytes,
      index,
      signatures: engine.signatures,
      limit: 10,
      thumbnailOf,
      cascade: !args['no-cascade'],
      checkDepth: args['check-depth'] ? Number(args['check-depth']) : undefined,
    });
    verifiedMs.push(performance.now() - t0);
    stageMs[ranking.stage].push(performance.now() - t0);
    const verified = ranking.results.map((r) => r.id);
    for (let k = 1; k < ranking.results.length; k++) {
      if (ranking.results[k].score > ranking.results[k - 1].score) throw new Error(`${q.file}: the verified list is not sorted by its score`);
    }
    if (args.failures && q.scored && !hit(verified, q.expected, 1)) {
      const show = ranking.results.slice(0, 3).map((r) => `${r.id} ${r.score.toFixed(1)} (raw ${r.raw.toFixed(2)} ${r.variant}, check ${r.check?.toFixed(3) ?? '-'} ${r.view ?? ''})`);
      const truth = ranking.results.findIndex((r) => group.get(r.id) === group.get(q.expected));
      process.stdout.write(`miss ${q.file.split('/').slice(-1)[0]}: stage ${ranking.stage}, card ${ranking.card ? 'found' : 'none'}, true at ${truth}; ${show.join(' | ')}\n`);
    }
    const key = `${q.set} ${q.distortion}${q.scored ? '' : ' (not scored)'}`;
    const c = cells.get(key) ?? { n: 0, plain1: 0, plain10: 0, ver1: 0, ver10: 0, stage1: 0, stage2: 0 };
    c.n++;
    c.plain1 += +hit(plain, q.expected, 1);
    c.plain10 += +hit(plain, q.expected, 10);
    c.ver1 += +hit(verified, q.expected, 1);
    c.ver10 += +hit(verified, q.expected, 10);
    c.stage1 += +(ranking.stage === 'plain');
    c.stage2 += +(ranking.stage === 'card');
    cells.set(key, c);
    if (++done % 500 === 0) process.stderr.write(`${done}/${picked.length} queries, ${((performance.now() - started) / done).toFixed(0)} ms each\n`);
  }

  const f = (x: number, n: number) => (x / n).toFixed(3);
  const lines = [
    '',
    `recall, lenient by group; ${picked.length} queries (${engine.name} engine${args['no-cascade'] ? ', no cascade' : ''})`,
    'set   distortion               n   imgseek@1 @10    verified@1 @10   diff@1   stopped after: plain  card',
  ];
  for (const [key, c] of [...cells].sort(([a], [b]) => a.localeCompare(b))) {
    const [set, ...rest] = key.split(' ');
    const diff = (c.ver1 - c.plain1) / c.n;
    lines.push(
      `${set.padEnd(5)} ${rest.join(' ').padEnd(22)} ${String(c.n).padStart(4)}   ${f(c.plain1, c.n)} ${f(c.plain10, c.n)}    ${f(c.ver1, c.n)} ${f(c.ver10, c.n)}   ${(diff >= 0 ? '+' : '') + diff.toFixed(3)}                 ${f(c.stage1, c.n)} ${f(c.stage2, c.n)}`,
    );
  }
  lines.push(
    '',
    `median query time, decode included: imgseek ${median(plainMs).toFixed(1)} ms, verified ${median(verifiedMs).toFixed(1)} ms ` +
      `(${(median(verifiedMs) / median(plainMs)).toFixed(2)}x); p90 ${percentile(plainMs, 0.9).toFixed(1)} / ${percentile(verifiedMs, 0.9).toFixed(1)} ms`,
    `verified, by where the cascade stopped: after the plain query ${stageMs.plain.length} queries, median ${median(stageMs.plain).toFixed(1)} ms; ` +
      `after the rectified card ${stageMs.card.length}, median ${median(stageMs.card).toFixed(1)} ms; ` +
      `after all variants ${stageMs.variants.length}, median ${median(stageMs.variants).toFixed(1)} ms`,
    '',
  );
  process.stdout.write(lines.join('\n'));
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

await main();
