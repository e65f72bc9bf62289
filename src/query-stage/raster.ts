/**
 * Small in-memory images the query stage works on: interleaved 8-bit RGB and
 * single-channel float grey, with the few pixel operations every step shares.
 */

/** 8-bit RGB, R,G,B interleaved, row-major. */
export interface RgbImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** One float channel (grey levels 0..255, or a mask), row-major. */
export interface GreyImage {
  readonly data: Float32Array;
  readonly width: number;
  readonly height: number;
}

/** Rec. 601 luma, as imgSeek's Y channel. */
export function toGrey(image: RgbImage): GreyImage {
  const { data, width, height } = image;
  const out = new Float32Array(width * height);
  for (let p = 0, q = 0; p < out.length; p++, q += 3) out[p] = 0.299 * data[q] + 0.587 * data[q + 1] + 0.114 * data[q + 2];
  return { data: out, width, height };
}

/**
 * Area-average shrink (each output pixel the mean of the source pixels it covers,
 * fractional edges weighted) to any size, aspect ratio ignored. Enlarging a side
 * repeats pixels (nearest), which only happens for images smaller than the target.
 */
export function shrinkGrey(src: GreyImage, width: number, height: number): GreyImage {
  return { data: shrinkPlanes(src.data, src.width, src.height, 1, width, height), width, height };
}

/** RGB version of shrinkGrey. */
export function shrinkRgb(src: RgbImage, width: number, height: number): RgbImage {
  const f = shrinkPlanes(src.data, src.width, src.height, 3, width, height);
  const out = new Uint8Array(f.length);
  for (let i = 0; i < f.length; i++) out[i] = clampByte(f[i]);
  return { data: out, width, height };
}

/** Which source samples each output sample covers, and with what weight. */
interface AxisWeights {
  start: Int32Array;
  count: Int32Array;
  offset: Int32Array;
  weight: Float32Array;
}

function axisWeights(from: number, size: number): AxisWeights {
  const step = from / size;
  const start = new Int32Array(size);
  const count = new Int32Array(size);
  const offset = new Int32Array(size);
  const weights: number[] = [];
  for (let i = 0; i < size; i++) {
    offset[i] = weights.length;
    if (step <= 1) {
      start[i] = Math.min(from - 1, Math.floor((i + 0.5) * step));
      count[i] = 1;
      weights.push(1);
      continue;
    }
    const a = i * step;
    const b = (i + 1) * step;
    const first = Math.floor(a);
    const last = Math.min(from - 1, Math.ceil(b) - 1);
    start[i] = first;
    count[i] = last - first + 1;
    for (let k = first; k <= last; k++) weights.push((Math.min(b, k + 1) - Math.max(a, k)) / step);
  }
  return { start, count, offset, weight: Float32Array.from(weights) };
}

/**
 * The separable area shrink of interleaved `channels`-channel data: rows first (each
 * source row resampled across), then output rows accumulated from weighted source
 * rows, so memory is read in order.
 */
function shrinkPlanes(data: ArrayLike<number>, w: number, h: number, channels: number, outW: number, outH: number): Float32Array {
  const src = data instanceof Float32Array ? data : Float32Array.from(data);
  const { start: xs, count: xn, offset: xo, weight: xw } = axisWeights(w, outW);
  const { start: ys, count: yn, offset: yo, weight: yw } = axisWeights(h, outH);
  const rowLen = outW * channels;
  const rows = new Float32Array(h * rowLen);
  for (let y = 0; y < h; y++) {
    const base = y * w * channels;
    let dst = y * rowLen;
    for (let i = 0; i < outW; i++) {
      const o = xo[i];
      const n = xn[i];
      const first = base + xs[i] * channels;
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        for (let k = 0, p = first + c; k < n; k++, p += channels) acc += src[p] * xw[o + k];
        rows[dst++] = acc;
      }
    }
  }
  const out = new Float32Array(outH * rowLen);
  for (let j = 0; j < outH; j++) {
    const o = yo[j];
    const n = yn[j];
    const dst = j * rowLen;
    for (let k = 0; k < n; k++) {
      const wk = yw[o + k];
      const from = (ys[j] + k) * rowLen;
      for (let i = 0; i < rowLen; i++) out[dst + i] += rows[from + i] * wk;
    }
  }
  return out;
}

export function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/** The image mirrored left to right. */
export function mirrorRgb(image: RgbImage): RgbImage {
  const { data, width, height } = image;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 3;
      const d = (y * width + (width - 1 - x)) * 3;
      out[d] = data[s];
      out[d + 1] = data[s + 1];
      out[d + 2] = data[s + 2];
    }
  }
  return { data: out, width, height };
}

/**
 * The median colour of the outermost ring of pixels (`ring` pixels deep): the colour
 * an image is padded with when it is zoomed out or rotated, and the table colour a
 * card is found against.
 */
export function edgeColour(image: RgbImage, ring = 1): [number, number, number] {
  const { data, width, height } = image;
  const depth = Math.max(1, Math.min(ring, Math.floor(Math.min(width, height) / 2)));
  const hist = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)];
  let n = 0;
  const add = (x: number, y: number): void => {
    const p = (y * width + x) * 3;
    hist[0][data[p]]++;
    hist[1][data[p + 1]]++;
    hist[2][data[p + 2]]++;
    n++;
  };
  for (let y = 0; y < height; y++) {
    if (y >= depth && y < height - depth) {
      for (let x = 0; x < Math.min(depth, width); x++) add(x, y);
      for (let x = Math.max(depth, width - depth); x < width; x++) add(x, y);
    } else {
      for (let x = 0; x < width; x++) add(x, y);
    }
  }
  const median = (h: Uint32Array): number => {
    let acc = 0;
    for (let v = 0; v < 256; v++) {
      acc += h[v];
      if (acc * 2 >= n) return v;
    }
    return 255;
  };
  return [median(hist[0]), median(hist[1]), median(hist[2])];
}
