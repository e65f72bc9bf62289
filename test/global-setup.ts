import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './helpers/paths.ts';

/**
 * Tests spawn the real CLI (bin/haarseek.js), which runs the compiled dist/: compile
 * it first so a test never runs yesterday's code. Incremental, so ~2 s when current.
 */
export default function buildDist(): void {
  // For a developer who has just built dist/ by hand (npm run build).
  if (process.env.HAARSEEK_TEST_PREBUILT === '1') return;
  execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(REPO_ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
}
