import type { Rng } from '../util/rng.ts';

/** An image with its mask planes at any size: interleaved pixels and one 0/1 plane per class. */
export interface Raster {
  width: number;
  height: number;
  channels: number;
  image: Uint8Array;
  mask: Uint8Array;
  classes: number;
}

/**
 * A geometric transform: the destination size for a source of width × height, and the source pixel of each
 * destination pixel.
 */
interface PixelMap {
  size(width: number, height: number): [number, number];
  source(x: number, y: number, width: number, height: number): [number, number];
}

// a quarter turn: the destination is height × width
const rot90: PixelMap = { size: (w, h) => [h, w], source: (x, y, _w, h) => [y, h - 1 - x] };
const flipH: PixelMap = { size: (w, h) => [w, h], source: (x, y, w) => [w - 1 - x, y] };
const flipV: PixelMap = { size: (w, h) => [w, h], source: (x, y, _w, h) => [x, h - 1 - y] };

/** Applies a pixel map to the image and every mask plane alike, so they stay aligned. */
export function remap<T extends Raster>(s: T, map: PixelMap): T {
  const [width, height] = map.size(s.width, s.height);
  const image = new Uint8Array(s.image.length);
  const mask = new Uint8Array(s.mask.length);
  const plane = width * height;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [sx, sy] = map.source(x, y, s.width, s.height);
      const dst = y * width + x;
      const src = sy * s.width + sx;
      for (let c = 0; c < s.channels; c++) image[dst * s.channels + c] = s.image[src * s.channels + c]!;
      for (let k = 0; k < s.classes; k++) mask[k * plane + dst] = s.mask[k * plane + src]!;
    }
  return { ...s, width, height, image, mask };
}

/** One draw of the original augmentation: `k` quarter turns (0 = none), then an optional flip. */
export interface RotateFlip {
  /** Quarter turns, 0..3. */
  k: number;
  flip: 'none' | 'h' | 'v' | 'hv';
}

/**
 * Draws the original protocol's augmentation (albumentations 1.2.0, official main.py): `RandomRotate90()` applies
 * with p 0.5 a rotation by k·90° with k uniform in {0,1,2,3} (k = 0 is possible: an applied rotation leaves 1/4 of
 * those samples unrotated, so 5/8 of all samples are unrotated); then `Flip()` with p 0.5 flips horizontally,
 * vertically or both (uniformly). The rng is consumed in this order: next, int(4) when rotating, next, int(3)
 * when flipping.
 */
export function drawRotateFlip(rng: Rng): RotateFlip {
  const k = rng.next() < 0.5 ? rng.int(4) : 0;
  let flip: RotateFlip['flip'] = 'none';
  if (rng.next() < 0.5) flip = (['h', 'v', 'hv'] as const)[rng.int(3)]!;
  return { k, flip };
}

/** Applies a drawn rotation and flip to the image and every mask plane alike. */
export function applyRotateFlip<T extends Raster>(s: T, t: RotateFlip): T {
  let out = s;
  for (let i = 0; i < t.k; i++) out = remap(out, rot90);
  if (t.flip === 'h' || t.flip === 'hv') out = remap(out, flipH);
  if (t.flip === 'v' || t.flip === 'hv') out = remap(out, flipV);
  return out;
}

/** The original protocol's augmentation (see {@link drawRotateFlip}); randomness comes only from `rng`. */
export function randomRotateFlip<T extends Raster>(s: T, rng: Rng): T {
  return applyRotateFlip(s, drawRotateFlip(rng));
}
