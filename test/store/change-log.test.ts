import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Signature } from '../../src/signature/types.ts';
import { WriterStore } from '../../src/store/writer-store.ts';
import { tempDataDir } from '../helpers/server.ts';

function signature(seed: number): Signature {
  const coefs = new Int32Array(120);
  for (let c = 0; c < 3; c++) for (let k = 0; k < 40; k++) coefs[c * 40 + k] = (k + 1 + seed * 41) % 16000 + 1;
  return { coefs, avgl: Float64Array.of(seed, 0.1, 0.2) };
}

function rows(store: WriterStore): { first: number; last: number; count: number } {
  const db = (store as unknown as { db: import('better-sqlite3').Database }).db;
  return db.prepare('SELECT min(seq) AS first, max(seq) AS last, count(*) AS count FROM changes').get() as { first: number; last: number; count: number };
}

describe('change log trimming', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const open = () => {
    const dir = tempDataDir();
    dirs.push(dir);
    return WriterStore.open(join(dir, 'haarseek.db'));
  };
  const bulk = (store: WriterStore, n: number) =>
    store.putImages(1, Array.from({ length: n }, (_, k) => ({ imageId: k + 1, width: 8, height: 8, sig: signature(k) })));

  it('a bulk load\'s rows stay until segments cover them, then all but the last thousand go at once', () => {
    const store = open();
    bulk(store, 5000);
    expect(store.trimChanges()).toBe(0);
    expect(rows(store).count).toBe(5001);
    const last = store.lastSeq();
    expect(store.coveredBySegments(last)).toBe(5001 - 1001);
    // The row at the covered position stays: segment sets are checked against it.
    expect(rows(store)).toEqual({ first: last - 1000, last, count: 1001 });
    expect(store.changeAt(last)).toEqual({ op: 'image', dbId: 1, imageId: 5000 });
    store.close();
  });

  it('never trims a row a hold still needs, and trims it once the hold moves on', () => {
    const store = open();
    bulk(store, 3000);
    let held = 200;
    const release = store.holdChanges(() => held);
    store.coveredBySegments(store.lastSeq());
    expect(rows(store).first).toBe(200);
    held = 1500;
    store.trimChanges();
    expect(rows(store).first).toBe(1500);
    release();
    store.trimChanges();
    expect(rows(store).first).toBe(store.lastSeq() - 1000);
    store.close();
  });

  it('commit listeners hear every committed write, not a rolled-back one', () => {
    const store = open();
    let heard = 0;
    store.onCommit(() => heard++);
    store.createSpace(1);
    store.putImage(1, 1, 8, 8, signature(1));
    // A NOT NULL column refused inside the transaction: nothing commits.
    expect(() => store.putImage(1, 2, null as unknown as number, 8, signature(2))).toThrow(/NOT NULL/);
    expect(heard).toBe(2);
    store.close();
  });
});
