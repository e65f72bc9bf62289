#!/usr/bin/env node
// Runs the compiled CLI (dist/, written by `npm install` / `npm run build`): no
// TypeScript is transpiled when a process starts, so a restarted reader is back at once.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/src/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('haarseek: dist/ is missing; run `npm install` (or `npm run build`) in the haarseek folder first\n');
  process.exit(1);
}
await import(cli.href);
