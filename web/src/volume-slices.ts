// Slices of a canonical (RAS+) volume as network inputs, and label planes written back: the page's twin of
// sliceOf/cutPlane in src/data/volume/slices.ts (that module reads files with Node), with the same shared
// arithmetic: 8-bit codes -> cv2 linear resize (src/data/resize.ts) -> q / 255 · scale + offset (intensity.ts),
// neighbours as extra channels with the end slices repeated.
//
// Slice planes: axial (x = i towards R, y = j towards A), coronal (x = i, y = k), sagittal (x = j, y = k).
import { resizeLinearCv2 } from '../../src/data/resize.ts';
import { dequantize, type IntensityMap } from '../../src/data/volume/intensity.ts';
import type { SliceAxis } from '../../src/data/volume/slices.ts';
import type { Vec3 } from '../../src/data/volume/volume.ts';
import { pixelsToTensor } from '../../src/pipeline/normalize.ts';

const AXIS: Record<SliceAxis, 0 | 1 | 2> = { sagittal: 0, coronal: 1, axial: 2 };

export const sliceCount = (dims: Vec3, axis: SliceAxis): number => dims[AXIS[axis]];

/** Width and height of the slice plane along an axis. */
export function planeSize(dims: Vec3, axis: SliceAxis): [number, number] {
  return axis === 'axial' ? [dims[0], dims[1]] : axis === 'coronal' ? [dims[0], dims[2]] : [dims[1], dims[2]];
}

/** Visits the plane pixel p (row-major, x fastest) and its voxel index for slice k. */
function eachVoxel(dims: Vec3, axis: SliceAxis, k: number, visit: (p: number, voxel: number) => void): void {
  const [nx, ny] = dims;
  const [w, h] = planeSize(dims, axis);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const voxel = axis === 'axial' ? x + nx * (y + ny * k) : axis === 'coronal' ? x + nx * (k + ny * y) : k + nx * (x + ny * y);
      visit(y * w + x, voxel);
    }
}

/** Copies slice k of a canonical volume into a plane. */
export function cutPlane<T extends Uint8Array | Float32Array>(data: T, dims: Vec3, axis: SliceAxis, k: number): T {
  const [w, h] = planeSize(dims, axis);
  const out = new (data.constructor as new (n: number) => T)(w * h);
  if (axis === 'axial') out.set(data.subarray(k * w * h, (k + 1) * w * h));
  else eachVoxel(dims, axis, k, (p, v) => (out[p] = data[v]!));
  return out;
}

/** Writes a plane into slice k of a canonical volume (the inverse of cutPlane). */
export function putPlane(data: Uint8Array, dims: Vec3, axis: SliceAxis, k: number, plane: Uint8Array): void {
  if (axis === 'axial') data.set(plane, k * plane.length);
  else eachVoxel(dims, axis, k, (p, v) => (data[v] = plane[p]!));
}

/**
 * Input [2·context + 1, size, size] of a model trained on volumes, for slice k of one 8-bit channel (codes over
 * map.lo..map.hi): neighbours innermost, end slices repeated, as sliceOf does for training.
 */
export function volumeSliceInput(q: Uint8Array, map: IntensityMap, dims: Vec3, axis: SliceAxis, k: number, size: number, context: number): Float32Array {
  const n = sliceCount(dims, axis);
  const [w, h] = planeSize(dims, axis);
  const out = new Float32Array((2 * context + 1) * size * size);
  for (let d = -context, c = 0; d <= context; d++, c++) {
    const at = Math.min(Math.max(k + d, 0), n - 1);
    const resized = resizeLinearCv2(cutPlane(q, dims, axis, at), w, h, 1, size, size);
    dequantize(resized, map, out.subarray(c * size * size, (c + 1) * size * size));
  }
  return out;
}

/**
 * Input [inChannels, size, size] of a model trained on 2-D images, for slice k of an 8-bit (windowed) volume: the
 * slice is the grey picture the model would get from a PNG (cv2 linear resize, then pixelsToTensor).
 */
export function imageSliceInput(q: Uint8Array, dims: Vec3, axis: SliceAxis, k: number, size: number, inChannels: number): Float32Array {
  const [w, h] = planeSize(dims, axis);
  return pixelsToTensor(resizeLinearCv2(cutPlane(q, dims, axis, k), w, h, 1, size, size), size, size, 1, inChannels);
}
