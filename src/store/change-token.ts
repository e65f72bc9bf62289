import { closeSync, openSync, readSync, statSync } from 'node:fs';

/**
 * What a reader compares on every request to know whether the database changed:
 * inode and size from stat, plus SQLite's file change counter (header bytes 24..27),
 * which every commit increments in rollback-journal mode. Unlike mtime it cannot miss
 * two commits inside one timestamp tick.
 */
export function readChangeToken(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const st = statSync(path);
    const header = Buffer.alloc(4);
    const n = readSync(fd, header, 0, 4, 24);
    const counter = n === 4 ? header.readUInt32BE(0) : -1;
    return `${st.dev}:${st.ino}:${st.size}:${counter}`;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}
