/**
 * Training augmentation of volume slices, TransUNet's `RandomGenerator` (datasets/dataset_synapse.py):
 * - with p 0.5: `rot90` by k in {0,1,2,3} quarter turns, then a flip along a random axis (rows or columns);
 * - otherwise with p 0.5: a rotation by an integer angle in [-20, 20) degrees about the slice centre,
 *   nearest neighbour for image and label alike, zero outside (scipy `ndimage.rotate(order=0, reshape=False)`);
 * - otherwise unchanged.
 * TransUNet transforms the stored 512² slice and then zooms it to the network size; here the slice is already at
 * the network size (see slices.ts), which is cheaper and differs only on edge pixels of the nearest-neighbour maps.
 *
 * @example const s = augmentSlice(sliceOf(p, 'axial', 10, { size: 224 }), 224, rng);
 */
import type { Rng } from '../../util/rng.ts';
import type { Slice } from './slices.ts';

/** Destination (x, y) -> source (x, y) of a square grid of side n, or undefined outside the source. */
type Mapping = (x: number, y: number) => [number, number] | undefined;

function remapSlice(s: Slice, n: number, map: Mapping): Slice {
  const plane = n * n;
  const channels = s.image.length / plane;
  const image = new Float32Array(s.image.length);
  const label = new Uint8Array(plane);
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      const src = map(x, y);
      if (!src) continue;
      const from = src[1] * n + src[0];
      const to = y * n + x;
      label[to] = s.label[from]!;
      for (let c = 0; c < channels; c++) image[c * plane + to] = s.image[c * plane + from]!;
    }
  return { id: s.id, image, label };
}

/** numpy's rot90(k) (counter-clockwise in row/column terms) followed by flip along `axis` (0: rows, 1: columns). */
export function rotFlip(s: Slice, n: number, k: number, axis: 0 | 1): Slice {
  const last = n - 1;
  return remapSlice(s, n, (x, y) => {
    // undo the flip, then the k quarter turns: rot90 maps out[r][c] = in[c][n-1-r]
    let r = axis === 0 ? last - y : y;
    let c = axis === 1 ? last - x : x;
    for (let t = 0; t < k; t++) [r, c] = [c, last - r];
    return [c, r];
  });
}

/** scipy.ndimage.rotate(angle, order=0, reshape=False, cval=0) of each plane: nearest source pixel, zero outside. */
export function rotateNearest(s: Slice, n: number, degrees: number): Slice {
  const a = (-degrees * Math.PI) / 180;
  const cos = Math.cos(a);
  const sin = Math.sin(a);
  const centre = (n - 1) / 2;
  return remapSlice(s, n, (x, y) => {
    const dr = y - centre;
    const dc = x - centre;
    const r = cos * dr - sin * dc + centre;
    const c = sin * dr + cos * dc + centre;
    // mode 'constant': a source point outside [0, n-1] is outside, even where rounding would land inside
    return r >= 0 && r <= n - 1 && c >= 0 && c <= n - 1 ? [Math.round(c), Math.round(r)] : undefined;
  });
}

/** One draw of TransUNet's RandomGenerator on a size × size slice. */
export function augmentSlice(s: Slice, n: number, rng: Rng): Slice {
  if (rng.next() > 0.5) return rotFlip(s, n, rng.int(4), rng.int(2) as 0 | 1);
  if (rng.next() > 0.5) return rotateNearest(s, n, -20 + rng.int(40));
  return s;
}
