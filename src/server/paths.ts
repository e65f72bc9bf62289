import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { FileError, PathNotAllowedError } from '../errors.ts';

/**
 * Resolves a client-given path and checks it lies inside one of the allowed
 * directories after following symlinks (so neither `..` nor a link leads out).
 * For a file that does not exist yet (a save target), its directory is checked.
 */
export function confinePath(requested: string, allowedDirs: readonly string[], mustExist: boolean): string {
  if (typeof requested !== 'string' || requested.length === 0 || requested.includes('\0')) {
    throw new PathNotAllowedError('the path is empty or contains a NUL byte');
  }
  const absolute = resolve(allowedDirs[0] ?? '.', requested);
  let real: string;
  try {
    real = realpathSync(absolute);
  } catch {
    if (mustExist) throw new FileError(`no such file or directory: ${requested}`);
    let parent: string;
    try {
      parent = realpathSync(dirname(absolute));
    } catch {
      throw new FileError(`the directory of ${requested} does not exist`);
    }
    real = join(parent, basename(absolute));
  }
  for (const dir of allowedDirs) {
    let root: string;
    try {
      root = realpathSync(dir);
    } catch {
      continue;
    }
    const rel = relative(root, real);
    if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) return real;
  }
  throw new PathNotAllowedError(
    `the path ${requested} is outside the directories this server may read and write (${allowedDirs.join(', ')}); start it with --allow-dir to allow more`,
  );
}
