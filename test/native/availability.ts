import { describe, it } from 'vitest';
import { loadNativeAddon } from '../../src/signature/native-loader.ts';

const isCI = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';

/**
 * Runs `body` when the native addon loaded. Without it the suite is skipped with the
 * loader's reason, except under CI, where it runs and fails (the addon must be built).
 */
export function describeNative(name: string, body: () => void): void {
  const load = loadNativeAddon();
  if (load.ok || isCI) {
    describe(name, body);
    return;
  }
  console.warn(`haarseek: skipping "${name}": ${load.reason} (set CI=true to make this a failure)`);
  describe.skip(`${name} — SKIPPED: ${load.reason}`, () => {
    it('needs the native addon', () => {});
  });
}
