import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { original } from '../helpers/corpus.ts';
import { type ServerProcess, TEST_ENV, health, rpcClient, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';

type Client = ReturnType<typeof rpcClient>;
type Ranked = Array<[number, number]>;

/** Small, so that a few dozen writes make the writer write several segment sets. */
const DELTA_MAX = 6;
const SEGMENT_ARGS = ['--segment-delta-max', String(DELTA_MAX), '--ranking', 'imgseek'];
/** Never writes segments: every space is an in-memory index read from SQLite, the engine as it was before segments. */
const NO_SEGMENT_ARGS = ['--segment-delta-max', '1000000000', '--ranking', 'imgseek'];

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, boundMs = 60_000): Promise<T> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Every stored image queried by id: ids, order and scores. */
async function allAnswers(client: Client, dbId: number): Promise<Map<number, Ranked>> {
  const out = new Map<number, Ranked>();
  for (const id of (await client('getDbImgIdList', dbId)) as number[]) out.set(id, await client('queryImgID', dbId, id, 8));
  return out;
}

for (const engine of ['native', 'ts'] as const) {
  describe(`index segments through real processes (${engine} engine)`, () => {
    const env = { ...TEST_ENV, HAARSEEK_ENGINE: engine };
    const dataDir = tempDataDir();
    const segments = join(dataDir, 'segments');
    let writer: ServerProcess;
    let reader: ServerProcess;
    let w: Client;
    let r: Client;
    const start = (role: 'writer' | 'reader', dir = dataDir, args = SEGMENT_ARGS, port?: number) =>
      startServerProcess(role, dir, { env, port, extraArgs: args, writerUrl: role === 'reader' ? writer.url : undefined });
    // The TypeScript engine is slow on a busy machine: fewer images, same paths.
    const images = engine === 'native' ? 40 : 16;

    beforeAll(async () => {
      writer = await start('writer');
      reader = await start('reader');
      w = rpcClient(writer.url);
      r = rpcClient(reader.url);
      await w('createDb', 1);
    });
    afterAll(async () => {
      await Promise.all([reader, writer].map((p) => stopProcess(p)));
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('adds, replaces and removals are read at once while the writer writes segment sets and the reader switches to them', async () => {
      // A client hammers the reader the whole time: no query may fail across a switch.
      let stop = false;
      let hammered = 0;
      const hammer = (async () => {
        while (!stop) {
          await r('queryImgBlob', 1, original(1), 5);
          hammered++;
        }
      })();
      const seen = new Set<number>();
      for (let id = 1; id <= images; id++) {
        expect(await w('addImgBlob', 1, id, original(id))).toBe(1);
        const top: Ranked = await r('queryImgID', 1, id, 3);
        expect(top[0][0], `the reader finds image ${id} right after its add`).toBe(id);
        const h = await health(reader.port);
        if (h.segments.seq !== null) seen.add(h.segments.seq);
        if (id === DELTA_MAX + 1) await until('the first segment set', async () => (await health(writer.port)).segments.written >= 1);
      }
      // Replace: image 2 now holds another picture; remove: image 3.
      expect(await w('addImgBlob', 1, 2, original(images + 1))).toBe(1);
      expect(await w('removeImg', 1, 3)).toBe(1);
      expect(await r('isImgOnDb', 1, 3)).toBe(false);
      const replaced: Ranked = await r('queryImgBlob', 1, original(images + 1), 3);
      expect(replaced[0][0]).toBe(2);
      stop = true;
      await hammer;
      expect(hammered).toBeGreaterThan(0);
      // The writer wrote sets as the changes came; the reader loaded more than one of them.
      const wh = await until('a segment set covering the last write', async () => {
        const h = await health(writer.port);
        return !h.segments.writing && h.segments.seq !== null && h.segments.backlog.changes < DELTA_MAX ? h : undefined;
      });
      expect(wh.segments.written).toBeGreaterThanOrEqual(2);
      expect(wh.segments.failed).toBe(0);
      seen.add((await health(reader.port)).segments.seq);
      expect(seen.size, `segment sets the reader used: ${[...seen].join(', ')}`).toBeGreaterThanOrEqual(2);
      const rh = await health(reader.port);
      expect(rh.segments.seq).not.toBeNull();
      // Native maps the files (shared page cache); TypeScript reads them into memory.
      if (engine === 'native') expect(rh.segments.mappedBytes).toBeGreaterThan(0);
      else expect(rh.segments.mappedBytes).toBe(0);
      expect(rh.images).toBe(images - 1);
    });

    it('answers are bit-identical to an index read from SQLite alone (ids, order, float scores)', async () => {
      const copy = tempDataDir();
      try {
        cpSync(join(dataDir, 'haarseek.db'), join(copy, 'haarseek.db'));
        const plain = await startServerProcess('writer', copy, { env, extraArgs: NO_SEGMENT_ARGS });
        try {
          const ph = await health(plain.port);
          expect(ph.segments.seq).toBeNull();
          expect(ph.segments.mappedBytes).toBe(0);
          const expected = await allAnswers(rpcClient(plain.url), 1);
          expect(expected.size).toBe(images - 1);
          expect(await allAnswers(r, 1)).toEqual(expected);
          expect(await allAnswers(w, 1)).toEqual(expected);
        } finally {
          await stopProcess(plain);
        }
      } finally {
        rmSync(copy, { recursive: true, force: true });
      }
    });

    it('a reader started on a segment set answers as before it was killed', async () => {
      const before = await allAnswers(r, 1);
      await stopProcess(reader, 'SIGKILL');
      reader = await start('reader', dataDir, SEGMENT_ARGS, reader.port);
      r = rpcClient(reader.url);
      const h = await health(reader.port);
      expect(h.segments.seq).not.toBeNull();
      expect(h.refreshes.full).toBe(1);
      expect(await allAnswers(r, 1)).toEqual(before);
    });

    it('a damaged segment is refused with a clear log line; the writer reads SQLite, answers the same and writes a new set', async () => {
      const before = await allAnswers(r, 1);
      await stopProcess(reader);
      await stopProcess(writer);
      const file = join(segments, 'space-1.hseg');
      const bytes = readFileSync(file);
      bytes[bytes.length - 100] ^= 0x20;
      writeFileSync(file, bytes);
      writer = await start('writer', dataDir, SEGMENT_ARGS, writer.port);
      w = rpcClient(writer.url);
      expect(writer.output()).toMatch(/space-1\.hseg: damaged \(checksum mismatch\)/);
      expect(writer.output()).toMatch(/index segment refused; reading the space from the database/);
      expect(await allAnswers(w, 1)).toEqual(before);
      // The space was read from SQLite: more images outside segments than the bound, so a new set comes.
      await until('a rewritten segment set', async () => {
        const h = await health(writer.port);
        return h.segments.seq !== null && !h.segments.writing ? h : undefined;
      });
      reader = await start('reader', dataDir, SEGMENT_ARGS, reader.port);
      r = rpcClient(reader.url);
      expect((await health(reader.port)).segments.seq).not.toBeNull();
      expect(await allAnswers(r, 1)).toEqual(before);
    });

    it('segments of another database are refused: the reader reads SQLite and answers right', async () => {
      const other = tempDataDir();
      try {
        const foreign = await startServerProcess('writer', other, { env, extraArgs: ['--segment-delta-max', '2'] });
        const f = rpcClient(foreign.url);
        await f('createDb', 1);
        for (let id = 1; id <= 4; id++) await f('addImgBlob', 1, id, original(100 + id));
          // The same operations as this database's first five: the log rows at the set's position look alike.
        await until('the other database\'s segments', async () => existsSync(join(other, 'segments', 'current.json')) && !(await health(foreign.port)).segments.writing);
        await stopProcess(foreign);
        const before = await allAnswers(r, 1);
        await stopProcess(reader);
        // The other database's set put in place of this one's, as a careless restore would.
        rmSync(segments, { recursive: true, force: true });
        cpSync(join(other, 'segments'), segments, { recursive: true });
        reader = await start('reader', dataDir, SEGMENT_ARGS, reader.port);
        r = rpcClient(reader.url);
        expect(reader.output()).toMatch(/index segment is of another database's space/);
        expect((await health(reader.port)).segments.seq).toBeNull();
        expect(await allAnswers(r, 1)).toEqual(before);
      } finally {
        rmSync(other, { recursive: true, force: true });
      }
    });

    it('a manifest that is not JSON is ignored: the reader reads SQLite and answers right', async () => {
      const before = await allAnswers(r, 1);
      await stopProcess(reader);
      writeFileSync(join(segments, 'current.json'), '{"format": 1, "seq": ');
      reader = await start('reader', dataDir, SEGMENT_ARGS, reader.port);
      r = rpcClient(reader.url);
      expect((await health(reader.port)).segments.seq).toBeNull();
      expect(await allAnswers(r, 1)).toEqual(before);
    });

    it('a save or export path inside the segment directory is refused', async () => {
      await expect(w('saveDbAs', 1, join(segments, 'current.json'))).rejects.toMatchObject({ faultCode: 7 });
      expect(existsSync(join(segments, 'current.json'))).toBe(true);
    });
  });
}
