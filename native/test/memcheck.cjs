// Exercises the addon through its JavaScript surface (signatures, add / replace /
// remove / compaction / query / clear / batch load and trim, empty indexes) for scripts/check-native-memory.sh.
const addon = require(process.argv[2]);
let seed = 1;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
const sigs = [];
for (let i = 0; i < 16; i++) {
  const rgb = new Uint8Array(128 * 128 * 3);
  for (let p = 0; p < rgb.length; p++) rgb[p] = i % 2 ? (rand() * 256) | 0 : (p / 200 + i * 9) & 0xff;
  const coefs = new Int32Array(120), avgl = new Float64Array(3);
  addon.signatureFromRgb(rgb, coefs, avgl);
  sigs.push({ coefs, avgl });
}
let check = 0;
for (let round = 0; round < 3; round++) {
  const index = new addon.NativeIndex();
  for (let step = 0; step < 6000; step++) {
    const id = 1 + Math.floor(rand() * 1500);
    const s = sigs[step % sigs.length];
    if (rand() < 0.55) index.add(id, s.coefs, s.avgl); else index.remove(id);
    if (step % 500 === 0) {
      const r = index.query(s.coefs, s.avgl, 10, step % 1000 === 0, false, step % 1500 === 0 ? Float64Array.of(1, 2, 3, 99) : undefined);
      check += r.length + index.ids().length + (index.avgl(id) ? 1 : 0) + index.memoryBytes();
    }
  }
  try { index.add(1, new Int32Array(120).fill(16384), sigs[0].avgl); } catch { check++; }
  index.clear();
  const n = 400, ids = new Float64Array(n), avgl = new Float64Array(n * 3), coefs = new Int16Array(n * 120);
  for (let i = 0; i < n; i++) {
    ids[i] = 1 + Math.floor(rand() * 300);
    avgl.set(sigs[i % sigs.length].avgl, i * 3);
    coefs.set(sigs[i % sigs.length].coefs, i * 120);
  }
  index.addBatch(n, ids, avgl, coefs);
  index.trim();
  check += index.query(sigs[0].coefs, sigs[0].avgl, 10, false, false).length;
  try { index.addBatch(n + 1, ids, avgl, coefs); } catch { check++; }
  index.clear();
}
// Empty indexes (nothing allocated until the first add), one emptied by removals, one
// dropped while holding images.
const empties = Array.from({ length: 50 }, () => new addon.NativeIndex());
for (const e of empties) check += e.query(sigs[0].coefs, sigs[0].avgl, 10, false, false).length + e.ids().length + e.memoryBytes();
empties[0].add(1, sigs[0].coefs, sigs[0].avgl);
empties[0].remove(1);
empties[0].add(2, sigs[1].coefs, sigs[1].avgl);
empties[1].add(3, sigs[2].coefs, sigs[2].avgl);
empties.length = 0;
console.log('node workload done', check);
