import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder holding haarseek's package.json. Modules run from src/ (tests, tsx) and
 * from dist/src/ (the compiled CLI), so paths to native/, nginx/, bin/ and web/ are
 * found from here, never by counting '../' from a module.
 */
function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || existsSync(join(dir, 'tsconfig.build.json')) === false) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('haarseek: cannot find the package root (package.json with tsconfig.build.json)');
    dir = parent;
  }
  return dir;
}

export const PACKAGE_ROOT = findPackageRoot();
