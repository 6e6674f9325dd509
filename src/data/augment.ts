import type { Rng } from '../util/rng.ts';
import type { Sample } from './samples.ts';

/** A geometric transform of a square grid: source index of each destination pixel. */
export type PixelMap = (x: number, y: number, n: number) => [number, number];

const rot90: PixelMap = (x, y, n) => [y, n - 1 - x];
const flipH: PixelMap = (x, y, n) => [n - 1 - x, y];
const flipV: PixelMap = (x, y, n) => [x, n - 1 - y];

/** Applies a pixel map to the image and every mask plane alike, so they stay aligned. */
export function remap(s: Sample, map: PixelMap): Sample {
  const n = s.size;
  const image = new Uint8Array(s.image.length);
  const mask = new Uint8Array(s.mask.length);
  const plane = n * n;
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      const [sx, sy] = map(x, y, n);
      const dst = y * n + x;
      const src = sy * n + sx;
      for (let c = 0; c < s.channels; c++) image[dst * s.channels + c] = s.image[src * s.channels + c]!;
      for (let k = 0; k < s.classes; k++) mask[k * plane + dst] = s.mask[k * plane + src]!;
    }
  return { ...s, image, mask };
}

/**
 * The original protocol's augmentation: with p 0.5 rotate by 90° k∈{1,2,3} times; with p 0.5 flip
 * horizontally, vertically or both (uniformly). Randomness comes only from `rng`.
 */
export function randomRotateFlip(s: Sample, rng: Rng): Sample {
  let out = s;
  if (rng.next() < 0.5) {
    const k = 1 + rng.int(3);
    for (let i = 0; i < k; i++) out = remap(out, rot90);
  }
  if (rng.next() < 0.5) {
    const which = rng.int(3);
    if (which !== 1) out = remap(out, flipH);
    if (which !== 0) out = remap(out, flipV);
  }
  return out;
}
