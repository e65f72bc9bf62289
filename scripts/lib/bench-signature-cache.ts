/**
 * The engine benchmark's signature sets (1M index signatures, 200 queries), made once
 * and kept as flat files in a cache directory, so repeated benchmark runs (and their
 * child processes) do not regenerate them. Same data as scripts/bench-engine.ts:
 * `variantSignatures` seed 1 for the index, seed 2 (after the 318 photos) for queries.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TsSignatureEngine } from '../../src/signature/haar.ts';
import { loadNativeAddon } from '../../src/signature/native-loader.ts';
import { NativeSignatureEngine } from '../../src/signature/native-signature.ts';
import { CHANNELS, SIGNATURE_LENGTH, type SignatureEngine } from '../../src/signature/types.ts';
import { SignatureSet, loadCorpusSources, variantSignatures } from './variant-signatures.ts';

export interface BenchSets {
  index: SignatureSet;
  queries: SignatureSet;
}

const QUERIES = 200;

function signatureEngine(): SignatureEngine {
  const load = loadNativeAddon();
  return load.ok ? new NativeSignatureEngine(load.addon) : new TsSignatureEngine();
}

function view<T>(buf: Buffer, bytes: number, make: (b: ArrayBufferLike, offset: number, length: number) => T): T {
  return buf.byteOffset % bytes === 0
    ? make(buf.buffer, buf.byteOffset, buf.length / bytes)
    : make(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length), 0, buf.length / bytes);
}

function readSet(dir: string, name: string): SignatureSet {
  const coefs = view(readFileSync(join(dir, `${name}.coefs`)), 4, (b, o, l) => new Int32Array(b, o, l));
  const avgls = view(readFileSync(join(dir, `${name}.avgl`)), 8, (b, o, l) => new Float64Array(b, o, l));
  return new SignatureSet(coefs, avgls, coefs.length / SIGNATURE_LENGTH);
}

function writeSet(dir: string, name: string, set: SignatureSet): void {
  for (const [ext, data] of [['coefs', set.coefs], ['avgl', set.avgls]] as const) {
    const tmp = join(dir, `${name}.${ext}.tmp-${process.pid}`);
    writeFileSync(tmp, data);
    renameSync(tmp, join(dir, `${name}.${ext}`));
  }
}

/**
 * The sets for `count` index signatures (`imageVariants` of them from images), from
 * `dir` when a previous run left them there, else generated and written there.
 */
export async function benchSignatureSets(dir: string, count: number, imageVariants: number, log: (msg: string) => void = () => {}): Promise<BenchSets> {
  const name = `index-${count}-${imageVariants}`;
  if (existsSync(join(dir, `${name}.avgl`)) && existsSync(join(dir, 'queries.avgl'))) {
    return { index: readSet(dir, name), queries: readSet(dir, 'queries') };
  }
  mkdirSync(dir, { recursive: true });
  const engine = signatureEngine();
  log(`generating ${count.toLocaleString('en')} signatures (${imageVariants} from images) into ${dir}`);
  const sources = await loadCorpusSources();
  const index = await variantSignatures({ count, imageVariants, engine, sources, seed: 1 });
  const q = await variantSignatures({ count: 318 + QUERIES, imageVariants: 318 + QUERIES, engine, sources, seed: 2 });
  const queries = new SignatureSet(q.coefs.slice(318 * SIGNATURE_LENGTH), q.avgls.slice(318 * CHANNELS), QUERIES);
  writeSet(dir, name, index);
  writeSet(dir, 'queries', queries);
  return { index, queries };
}
