import {
  CHANNELS,
  COEFS_PER_CHANNEL,
  IMAGE_SIDE,
  PIXELS,
  SIGNATURE_LENGTH,
  type Signature,
  type SignatureEngine,
} from './types.ts';

/**
 * imgSeek's non-normalised 2-D Haar transform, in place. The operation order (and the
 * literal 0.7071) matter: some images have 40th/41st coefficients that differ by 1e-17.
 */
export function haar2D(a: Float64Array, scratch: Float64Array): void {
  const n = IMAGE_SIDE;
  for (let row = 0; row < PIXELS; row += n) {
    let c = 1;
    for (let h = n; h > 1; h >>= 1) {
      const half = h >> 1;
      c *= 0.7071;
      for (let k = 0, j1 = row, j2 = row; k < half; k++, j1++, j2 += 2) {
        scratch[k] = (a[j2] - a[j2 + 1]) * c;
        a[j1] = a[j2] + a[j2 + 1];
      }
      for (let k = 0; k < half; k++) a[row + half + k] = scratch[k];
    }
    a[row] *= c;
  }
  for (let col = 0; col < n; col++) {
    let c = 1;
    for (let h = n; h > 1; h >>= 1) {
      const half = h >> 1;
      c *= 0.7071;
      for (let k = 0, j1 = col, j2 = col; k < half; k++, j1 += n, j2 += 2 * n) {
        scratch[k] = (a[j2] - a[j2 + n]) * c;
        a[j1] = a[j2] + a[j2 + n];
      }
      for (let k = 0, j1 = col + half * n; k < half; k++, j1 += n) a[j1] = scratch[k];
    }
    a[col] *= c;
  }
}

/**
 * Writes the signed indices of the COEFS_PER_CHANNEL largest-magnitude coefficients
 * (DC excluded) into out, sorted ascending. Ties go to the lower index.
 */
export function largestCoefficients(coef: Float64Array, out: Int32Array): void {
  // Min-heap of the best COEFS_PER_CHANNEL so far, keyed by (magnitude, -index).
  const heapIdx = new Int32Array(COEFS_PER_CHANNEL);
  const heapMag = new Float64Array(COEFS_PER_CHANNEL);
  let size = 0;
  const worse = (ma: number, ia: number, mb: number, ib: number) => ma < mb || (ma === mb && ia > ib);
  const siftDown = (pos: number) => {
    for (;;) {
      const l = 2 * pos + 1;
      if (l >= size) return;
      const r = l + 1;
      let m = l;
      if (r < size && worse(heapMag[r], heapIdx[r], heapMag[l], heapIdx[l])) m = r;
      if (!worse(heapMag[m], heapIdx[m], heapMag[pos], heapIdx[pos])) return;
      const ti = heapIdx[m], tm = heapMag[m];
      heapIdx[m] = heapIdx[pos]; heapMag[m] = heapMag[pos];
      heapIdx[pos] = ti; heapMag[pos] = tm;
      pos = m;
    }
  };
  for (let i = 1; i < PIXELS; i++) {
    const mag = Math.abs(coef[i]);
    if (size < COEFS_PER_CHANNEL) {
      let pos = size++;
      heapIdx[pos] = i; heapMag[pos] = mag;
      while (pos > 0) {
        const parent = (pos - 1) >> 1;
        if (!worse(heapMag[pos], heapIdx[pos], heapMag[parent], heapIdx[parent])) break;
        const ti = heapIdx[parent], tm = heapMag[parent];
        heapIdx[parent] = heapIdx[pos]; heapMag[parent] = heapMag[pos];
        heapIdx[pos] = ti; heapMag[pos] = tm;
        pos = parent;
      }
    } else if (worse(heapMag[0], heapIdx[0], mag, i)) {
      heapIdx[0] = i; heapMag[0] = mag;
      siftDown(0);
    }
  }
  for (let k = 0; k < COEFS_PER_CHANNEL; k++) {
    const i = heapIdx[k];
    out[k] = coef[i] > 0 ? i : -i;
  }
  out.sort();
}

/** The TypeScript signature engine: imgSeek's calcHaar, bit for bit. */
export class TsSignatureEngine implements SignatureEngine {
  readonly name = 'ts' as const;
  private readonly channels = [new Float64Array(PIXELS), new Float64Array(PIXELS), new Float64Array(PIXELS)];
  private readonly scratch = new Float64Array(IMAGE_SIDE);

  signatureFromRgb(rgb: Uint8Array): Signature {
    if (rgb.length !== PIXELS * 3) {
      throw new RangeError(`expected ${PIXELS * 3} bytes of 128x128 RGB, got ${rgb.length}`);
    }
    const [y, i, q] = this.channels;
    for (let p = 0, o = 0; p < PIXELS; p++, o += 3) {
      const r = rgb[o], g = rgb[o + 1], b = rgb[o + 2];
      y[p] = 0.299 * r + 0.587 * g + 0.114 * b;
      i[p] = 0.596 * r - 0.275 * g - 0.321 * b;
      q[p] = 0.212 * r - 0.523 * g + 0.311 * b;
    }
    const coefs = new Int32Array(SIGNATURE_LENGTH);
    const avgl = new Float64Array(CHANNELS);
    for (let c = 0; c < CHANNELS; c++) {
      const ch = this.channels[c];
      haar2D(ch, this.scratch);
      avgl[c] = ch[0] / (256 * 128);
      largestCoefficients(ch, coefs.subarray(c * COEFS_PER_CHANNEL, (c + 1) * COEFS_PER_CHANNEL));
    }
    return { coefs, avgl };
  }
}
