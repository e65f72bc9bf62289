import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { originalPath } from '../helpers/corpus.ts';
import { CLI } from '../helpers/server.ts';

const execFileAsync = promisify(execFile);

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (bin/haarseek.js) with the environment given (none of the machine's key by default). */
export async function haarseek(args: string[], env: NodeJS.ProcessEnv = withoutKey()): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args], { env, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

export function withoutKey(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.HAARSEEK_WRITE_KEY;
  return env;
}

/**
 * A folder of files as a bulk add meets them:
 * - 00001..00006.jpg and sub/00007.jpg: corpus originals 1..7 (ids 1..7);
 * - sub/00003.png: original 9 under id 3 again (a duplicate id);
 * - 00008.jpg: the first 2,000 bytes of original 8 (undecodable);
 * - holiday.jpg: original 10 with a name that is not a number (no id);
 * - notes.txt: not an image by its extension.
 */
export function makeImageFolder(root: string): string {
  const dir = join(root, 'images');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  for (let n = 1; n <= 6; n++) copyFileSync(originalPath(n), join(dir, `0000${n}.jpg`));
  copyFileSync(originalPath(7), join(dir, 'sub', '00007.jpg'));
  copyFileSync(originalPath(9), join(dir, 'sub', '00003.png'));
  writeFileSync(join(dir, '00008.jpg'), readFileSync(originalPath(8)).subarray(0, 2000));
  copyFileSync(originalPath(10), join(dir, 'holiday.jpg'));
  writeFileSync(join(dir, 'notes.txt'), 'not an image\n');
  return dir;
}

/** The ids of a space, ascending, and the change-log rows, read straight from the database. */
export function stored(dataDir: string, space: number): { ids: number[]; imageChanges: number } {
  const db = new Database(join(dataDir, 'haarseek.db'), { readonly: true });
  try {
    const ids = db.prepare('SELECT image_id FROM images WHERE db_id = ? ORDER BY image_id').pluck().all(space) as number[];
    const imageChanges = db.prepare("SELECT count(*) FROM changes WHERE op = 'image' AND db_id = ?").pluck().get(space) as number;
    return { ids, imageChanges };
  } finally {
    db.close();
  }
}

/** A JSON summary printed by `haarseek add --json`. */
export function summaryOf(run: Run): Record<string, any> {
  try {
    return JSON.parse(run.stdout);
  } catch {
    throw new Error(`not a JSON summary (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
  }
}
