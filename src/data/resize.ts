/**
 * Resizing exactly as the original training code does it: OpenCV's `cv2.resize` with `INTER_LINEAR` for images and
 * `INTER_NEAREST` for masks (albumentations `Resize`, DESIGN §4). Pure TypeScript on typed arrays, with no Node
 * imports, so that the browser app can use the same arithmetic.
 *
 * INTER_LINEAR (OpenCV 4.x `resize.cpp`, 8-bit path):
 * - pixel-centre alignment: src = (dst + 0.5) · scale − 0.5 with scale = 1 / (dstSize / srcSize), computed in
 *   double and rounded to float; positions outside the image are clamped to the border pixel (weight 1);
 * - no antialiasing: every output pixel reads at most 2 × 2 source pixels, whatever the shrink factor;
 * - fixed point: the weights are rounded to 11 bits (INTER_RESIZE_COEF_BITS, 2048 = 1) and the horizontal pass
 *   keeps exact 32-bit sums h = p0 · a0 + p1 · a1; the vertical pass is the arithmetic of OpenCV's SIMD code,
 *   t = ((h0 >> 4) · b0 >> 16) + ((h1 >> 4) · b1 >> 16), output (t + 2) >> 2. Debian's OpenCV 4.6 gives exactly
 *   these values for every pixel, row ends included (measured at every output width from 1 to 40 with 1 to 4
 *   channels, and on BUSI); OpenCV's scalar formula, (h0 · b0 + h1 · b1 + 2^21) >> 22, can differ by 1;
 * - an exact 2× shrink in both directions goes through OpenCV's INTER_AREA instead: the mean of each 2 × 2 block,
 *   rounded half up ((sum + 2) >> 2, what the linear formula gives too) for 1, 3 and 4 channels, and half to even
 *   for 2 channels (OpenCV has no SIMD code for that one).
 *
 * INTER_NEAREST is OpenCV's (not the half-pixel INTER_NEAREST_EXACT): src = min(floor(dst · scale), size − 1).
 */

/** `cv2` is the original protocol's resize; `antialias` is sharp's linear kernel (libvips), which antialiases when shrinking. */
export type ResizeMode = 'cv2' | 'antialias';

export const RESIZE_MODES: readonly ResizeMode[] = ['cv2', 'antialias'];

/** 1 in OpenCV's fixed-point resize weights (INTER_RESIZE_COEF_BITS = 11). */
const ONE = 2048;

/** cvRound of a float: round half to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Source offsets and fixed-point weights for one axis. Horizontally (`clampWeights`) OpenCV moves a position outside
 * the image onto the border pixel with weights (1, 0); vertically it keeps the weights and clamps the two rows it
 * reads, which in the fixed-point arithmetic is not always the same.
 */
function linearAxis(src: number, dst: number, clampWeights: boolean): { offset: Int32Array; w0: Int32Array; w1: Int32Array } {
  const scale = 1 / (dst / src);
  const offset = new Int32Array(dst);
  const w0 = new Int32Array(dst);
  const w1 = new Int32Array(dst);
  for (let d = 0; d < dst; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (clampWeights && s < 0) (f = 0), (s = 0);
    if (clampWeights && s >= src - 1) (f = 0), (s = src - 1);
    offset[d] = s;
    w0[d] = roundHalfEven(Math.fround(Math.fround(1 - f) * ONE));
    w1[d] = roundHalfEven(Math.fround(f * ONE));
  }
  return { offset, w0, w1 };
}

function checkArgs(pixels: Uint8Array, width: number, height: number, channels: number, toWidth: number, toHeight: number): void {
  for (const [name, v] of [['width', width], ['height', height], ['channels', channels], ['toWidth', toWidth], ['toHeight', toHeight]] as const)
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`resize: ${name} must be a positive integer, got ${v}`);
  if (pixels.length !== width * height * channels)
    throw new RangeError(`resize: ${pixels.length} samples for ${width}x${height}x${channels} (expected ${width * height * channels})`);
}

/**
 * `cv2.resize(src, (toWidth, toHeight), interpolation=cv2.INTER_LINEAR)` on 8-bit interleaved pixels with any
 * number of channels (each channel on its own). Returns a new array (a copy when the size does not change).
 */
export function resizeLinearCv2(pixels: Uint8Array, width: number, height: number, channels: number, toWidth: number, toHeight: number): Uint8Array {
  checkArgs(pixels, width, height, channels, toWidth, toHeight);
  if (width === toWidth && height === toHeight) return pixels.slice();
  if (isHalving(width, toWidth) && isHalving(height, toHeight)) return halve(pixels, toWidth, toHeight, channels);
  const cn = channels;
  const x = linearAxis(width, toWidth, true);
  const y = linearAxis(height, toHeight, false);
  const rowLength = toWidth * cn;
  // horizontal pass of one source row: exact sums of 8-bit values times 11-bit weights
  const horizontal = (sy: number, out: Int32Array) => {
    const row = sy * width * cn;
    for (let dx = 0; dx < toWidth; dx++) {
      const s = row + x.offset[dx]! * cn;
      const a0 = x.w0[dx]!;
      const a1 = x.w1[dx]!;
      const o = dx * cn;
      if (a1 === 0) for (let c = 0; c < cn; c++) out[o + c] = pixels[s + c]! * a0;
      else for (let c = 0; c < cn; c++) out[o + c] = pixels[s + c]! * a0 + pixels[s + cn + c]! * a1;
    }
  };
  const out = new Uint8Array(toHeight * rowLength);
  let h0 = new Int32Array(rowLength);
  let h1 = new Int32Array(rowLength);
  let row0 = -1;
  let row1 = -1;
  for (let dy = 0; dy < toHeight; dy++) {
    // rows sy and sy + 1, each clamped to the image
    const sy = y.offset[dy]!;
    const sy0 = Math.min(Math.max(sy, 0), height - 1);
    const sy1 = Math.min(Math.max(sy + 1, 0), height - 1);
    const b0 = y.w0[dy]!;
    const b1 = y.w1[dy]!;
    if (sy0 === row1) {
      [h0, h1] = [h1, h0];
      row0 = row1;
      row1 = -1;
    }
    if (sy0 !== row0) {
      horizontal(sy0, h0);
      row0 = sy0;
    }
    if (sy1 !== row1) {
      if (sy1 === row0) h1.set(h0);
      else horizontal(sy1, h1);
      row1 = sy1;
    }
    const o = dy * rowLength;
    for (let i = 0; i < rowLength; i++) {
      // weights >= 0 and b0 + b1 = 2048: t stays within [0, 1020], no clamping needed
      out[o + i] = ((((h0[i]! >> 4) * b0) >> 16) + (((h1[i]! >> 4) * b1) >> 16) + 2) >> 2;
    }
  }
  return out;
}

/** OpenCV's test for its INTER_AREA shortcut: the scale is 2 within double rounding. */
const isHalving = (src: number, dst: number) => Math.abs(1 / (dst / src) - 2) < Number.EPSILON;

/** OpenCV's fast INTER_AREA for an exact 2× shrink: the mean of each 2 × 2 block (rounding: see the module notes). */
function halve(pixels: Uint8Array, toWidth: number, toHeight: number, channels: number): Uint8Array {
  const out = new Uint8Array(toWidth * toHeight * channels);
  const row = 2 * toWidth * channels;
  let o = 0;
  for (let dy = 0; dy < toHeight; dy++) {
    const top = 2 * dy * row;
    for (let dx = 0; dx < toWidth; dx++)
      for (let c = 0; c < channels; c++) {
        const s = top + 2 * dx * channels + c;
        const sum = pixels[s]! + pixels[s + channels]! + pixels[s + row]! + pixels[s + row + channels]!;
        out[o++] = channels === 2 ? roundHalfEven(sum / 4) : (sum + 2) >> 2;
      }
  }
  return out;
}

/** Source index per destination index of OpenCV's INTER_NEAREST: min(floor(d · scale), size − 1). */
function nearestAxis(src: number, dst: number): Int32Array {
  const scale = 1 / (dst / src);
  const offset = new Int32Array(dst);
  for (let d = 0; d < dst; d++) offset[d] = Math.min(Math.floor(d * scale), src - 1);
  return offset;
}

/**
 * `cv2.resize(src, (toWidth, toHeight), interpolation=cv2.INTER_NEAREST)` on 8-bit interleaved pixels (masks,
 * label maps). Returns a new array.
 */
export function resizeNearestCv2(pixels: Uint8Array, width: number, height: number, channels: number, toWidth: number, toHeight: number): Uint8Array {
  checkArgs(pixels, width, height, channels, toWidth, toHeight);
  if (width === toWidth && height === toHeight) return pixels.slice();
  const xs = nearestAxis(width, toWidth);
  const ys = nearestAxis(height, toHeight);
  const out = new Uint8Array(toWidth * toHeight * channels);
  let o = 0;
  for (let dy = 0; dy < toHeight; dy++) {
    const row = ys[dy]! * width;
    for (let dx = 0; dx < toWidth; dx++) {
      const s = (row + xs[dx]!) * channels;
      for (let c = 0; c < channels; c++) out[o++] = pixels[s + c]!;
    }
  }
  return out;
}
