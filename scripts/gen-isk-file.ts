/**
 * Writes a synthetic iskdaemon 0.9.5 database file (savealldbs, or savedb with --savedb)
 * for import benchmarks: random but valid signatures (40 distinct coefficients per
 * channel, listed unsorted as iskdaemon lists them), avgl, sizes, and keywords on
 * every tenth image. Deterministic for a given --seed.
 *
 *   npx tsx scripts/gen-isk-file.ts /tmp/isk-1m.isk --images 1000000
 *   time node bin/haarseek.js import isk /tmp/isk-1m.isk --data /tmp/isk-1m-data
 */
import { Command } from 'commander';
import { writeIskFile, type IskRecordOut, type IskSpaceSource } from '../src/import/isk-writer.ts';
import { CHANNELS, COEFS_PER_CHANNEL, SIGNATURE_LENGTH } from '../src/signature/types.ts';
import { prng } from './lib/prng.ts';

const program = new Command()
  .argument('<file>', 'where to write the file')
  .option('--images <n>', 'images per space', (v) => Number(v), 1_000_000)
  .option('--spaces <n>', 'database spaces (ids 1..n)', (v) => Number(v), 1)
  .option('--savedb', 'write the single-space savedb form (needs --spaces 1)')
  .option('--seed <n>', 'PRNG seed', (v) => Number(v), 13)
  .parse();

const [file] = program.args;
const opts = program.opts<{ images: number; spaces: number; savedb?: boolean; seed: number }>();

function makeSpace(dbId: number, n: number, seed: number): IskSpaceSource {
  const rand = prng(seed);
  const ids = new Float64Array(n);
  const coefs = new Int16Array(n * SIGNATURE_LENGTH);
  const avgl = new Float64Array(n * CHANNELS);
  const sizes = new Int32Array(n * 2);
  const taken = new Uint32Array(16384);
  let id = 0;
  let stamp = 0;
  for (let k = 0; k < n; k++) {
    id += 1 + Math.floor(rand() * 3);
    ids[k] = id;
    for (let c = 0; c < CHANNELS; c++) {
      stamp++;
      for (let j = 0; j < COEFS_PER_CHANNEL; ) {
        // Low indices are the common ones in real signatures: square a uniform draw.
        const r = rand();
        const index = 1 + Math.floor(r * r * 16383);
        if (taken[index] === stamp) continue;
        taken[index] = stamp;
        coefs[k * SIGNATURE_LENGTH + c * COEFS_PER_CHANNEL + j++] = rand() < 0.5 ? -index : index;
      }
    }
    avgl[k * 3] = rand();
    avgl[k * 3 + 1] = rand() * 0.2 - 0.1;
    avgl[k * 3 + 2] = rand() * 0.2 - 0.1;
    sizes[k * 2] = 100 + Math.floor(rand() * 4000);
    sizes[k * 2 + 1] = 100 + Math.floor(rand() * 4000);
  }
  const bytes = new Uint8Array(coefs.buffer);
  return {
    dbId,
    ids,
    *signatures() {
      for (let k = 0; k < n; k++) yield bytes.subarray(k * SIGNATURE_LENGTH * 2, (k + 1) * SIGNATURE_LENGTH * 2);
    },
    *records(): Generator<IskRecordOut> {
      const rec = { id: 0, width: 0, height: 0, avgl: new Float64Array(3), coefs: new Int32Array(SIGNATURE_LENGTH), keywords: [] as number[] };
      for (let k = 0; k < n; k++) {
        rec.id = ids[k];
        rec.width = sizes[k * 2];
        rec.height = sizes[k * 2 + 1];
        rec.avgl.set(avgl.subarray(k * 3, k * 3 + 3));
        rec.coefs.set(coefs.subarray(k * SIGNATURE_LENGTH, (k + 1) * SIGNATURE_LENGTH));
        rec.keywords = k % 10 === 0 ? [1 + (k % 97), 1000 + (k % 13)] : [];
        yield rec;
      }
    },
  };
}

const started = performance.now();
const spaces = Array.from({ length: opts.spaces }, (_, s) => makeSpace(s + 1, opts.images, opts.seed + s));
const job = writeIskFile(file, opts.savedb ? 'savedb' : 'savealldbs', spaces);
let step = job.next();
while (!step.done) step = job.next();
const seconds = (performance.now() - started) / 1000;
process.stdout.write(`${file}: ${step.value.images} images in ${opts.spaces} space(s), ${step.value.bytes} bytes, written in ${seconds.toFixed(1)} s\n`);
