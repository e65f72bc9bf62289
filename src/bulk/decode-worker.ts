// A worker thread of `haarseek add --data`: reads an image file, decodes it with sharp
// and computes its signature, so that N workers decode N images at once and the main
// thread only commits. One file at a time per worker.
import { open } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { nativeEngine, tsEngine } from '../engine.ts';
import { ImageError } from '../errors.ts';
import { type DecodeLimits, decodeToRgb128 } from '../image/decode.ts';
import { thumbnailOf } from '../query-stage/thumbnail.ts';
import type { DecodeAnswer, DecodeJob } from './decode-pool.ts';

const { engine: engineName, limits } = workerData as { engine: 'ts' | 'native'; limits: DecodeLimits };
const engine = engineName === 'native' ? nativeEngine() : tsEngine();
// One libvips thread per decode: --jobs workers then use --jobs cores, no more.
sharp.concurrency(1);

async function decodeFile(path: string): Promise<DecodeAnswer> {
  let bytes: Buffer;
  try {
    const file = await open(path, 'r');
    try {
      const { size } = await file.stat();
      if (size > limits.maxInputBytes) {
        return { ok: false, reason: 'too-large', message: `the file is ${size} bytes; the limit is ${limits.maxInputBytes} bytes (--max-bytes)` };
      }
      bytes = await file.readFile();
    } finally {
      await file.close();
    }
  } catch (err) {
    return { ok: false, reason: 'unreadable', message: (err as Error).message };
  }
  try {
    const decoded = await decodeToRgb128(bytes, limits);
    const sig = engine.signatures.signatureFromRgb(decoded.rgb);
    return { ok: true, width: decoded.width, height: decoded.height, coefs: sig.coefs, avgl: sig.avgl, thumb: thumbnailOf(decoded.rgb) };
  } catch (err) {
    if (err instanceof ImageError) {
      return { ok: false, reason: err.kind === 'too-large' || err.kind === 'too-many-pixels' ? 'too-large' : 'undecodable', message: err.message };
    }
    return { ok: false, reason: 'undecodable', message: (err as Error).message };
  }
}

parentPort!.on('message', async (job: DecodeJob) => {
  const answer = await decodeFile(job.path);
  parentPort!.postMessage({ seq: job.seq, ...answer });
});
