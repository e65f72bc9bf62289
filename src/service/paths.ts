import { existsSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { FileError, PathNotAllowedError } from '../errors.ts';

/**
 * Resolves a client-given path and checks it lies inside one of the allowed
 * directories after following symlinks (so neither `..` nor a link leads out). The
 * check comes before any existence check, so a refused path reveals nothing.
 */
export function confinePath(requested: string, allowedDirs: readonly string[], mustExist: boolean): string {
  if (typeof requested !== 'string' || requested.length === 0 || requested.includes('\0')) {
    throw new PathNotAllowedError('the path is empty or contains a NUL byte');
  }
  const real = realpathOfLongestExistingPrefix(resolve(allowedDirs[0] ?? '.', requested));
  if (!allowedDirs.some((dir) => isInside(real, dir))) {
    throw new PathNotAllowedError(
      `the path ${requested} is outside the directories this server may read and write (${allowedDirs.join(', ')}); start it with --allow-dir to allow more`,
    );
  }
  if (mustExist && !existsSync(real)) throw new FileError(`no such file or directory: ${requested}`);
  if (!mustExist && !existsSync(dirname(real))) throw new FileError(`the directory of ${requested} does not exist`);
  return real;
}

function realpathOfLongestExistingPrefix(absolute: string): string {
  const missing: string[] = [];
  let current = absolute;
  for (;;) {
    try {
      return join(realpathSync(current), ...missing.reverse());
    } catch {
      const parent = dirname(current);
      if (parent === current) return absolute;
      missing.push(basename(current));
      current = parent;
    }
  }
}

function isInside(path: string, dir: string): boolean {
  let root: string;
  try {
    root = realpathSync(dir);
  } catch {
    return false;
  }
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}
