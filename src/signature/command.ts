import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { COEFS_PER_CHANNEL } from './types.ts';

/** `haarseek signature FILE...`: what haarseek would store for each image. */
export function registerSignatureCommand(program: Command): void {
  program
    .command('signature')
    .description('print the imgSeek signature of each image (size, avgl, Y/I/Q coefficient lists)')
    .argument('<files...>', 'image files')
    .option('--json', 'print one JSON document instead of text')
    .action(async (files: string[], opts: { json?: boolean }) => {
      const [{ loadEngine }, { decodeToRgb128 }] = await Promise.all([import('../engine.ts'), import('../image/decode.ts')]);
      const engine = loadEngine();
      const images = [];
      let failed = false;
      for (const file of files) {
        try {
          const decoded = await decodeToRgb128(await readFile(file));
          const sig = engine.signatures.signatureFromRgb(decoded.rgb);
          const lists = [0, 1, 2].map((c) => Array.from(sig.coefs.subarray(c * COEFS_PER_CHANNEL, (c + 1) * COEFS_PER_CHANNEL)));
          images.push({ file, width: decoded.width, height: decoded.height, avgl: Array.from(sig.avgl), sig: lists });
        } catch (err) {
          failed = true;
          process.stderr.write(`${file}: ${err instanceof Error ? err.message : String(err)}\n`);
        }
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ engine: engine.name, images }, null, 1)}\n`);
      } else {
        for (const im of images) {
          process.stdout.write(
            `${im.file}: ${im.width}x${im.height}\n  avgl ${im.avgl.join(' ')}\n` +
              ['Y', 'I', 'Q'].map((ch, c) => `  ${ch} ${im.sig[c].join(' ')}\n`).join(''),
          );
        }
      }
      if (failed) process.exitCode = 1;
    });
}
