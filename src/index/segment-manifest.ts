/**
 * The segment directory's table of contents, `current.json`: which change-log position
 * the segment files cover and the log row at that position. Written (atomically) after
 * every segment file is in place, so a reader that sees a new manifest finds the files
 * it names; its identity (inode, size, mtime) is what readers check per request to know
 * that new segments are there.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const MANIFEST_NAME = 'current.json';

/** The change-log row a segment set ends on: a fingerprint of the database's history. */
export interface ChangeFingerprint {
  op: string;
  dbId: number;
  imageId: number | null;
}

export interface SegmentManifest {
  format: 1;
  seq: number;
  /** The log row at seq, null when the log was empty; a database without it is another history. */
  at: ChangeFingerprint | null;
  /** createdAt: the space's creation time in the database, so a set is never used for another database's space of the same id. */
  spaces: Array<{ dbId: number; createdAt: number; count: number; bytes: number }>;
  writtenAt: string;
}

export function manifestPath(dir: string): string {
  return join(dir, MANIFEST_NAME);
}

export function writeManifest(dir: string, manifest: SegmentManifest): void {
  const path = manifestPath(dir);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, `${JSON.stringify(manifest)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The manifest, or null when there is none or it cannot be read (segments are then rebuilt). */
export function readManifest(dir: string): SegmentManifest | null {
  try {
    const m = JSON.parse(readFileSync(manifestPath(dir), 'utf8')) as SegmentManifest;
    if (m.format !== 1 || !Number.isSafeInteger(m.seq) || !Array.isArray(m.spaces)) return null;
    return m;
  } catch {
    return null;
  }
}

/** Changes whenever a new manifest is put in place; '' when there is none. */
export function manifestIdentity(dir: string): string {
  try {
    const st = statSync(manifestPath(dir), { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch {
    return '';
  }
}
