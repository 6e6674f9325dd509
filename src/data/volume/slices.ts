/**
 * Volume cases as 2-D slices, pure arithmetic (Node and the browser): each case read once (prepare.ts), put in canonical RAS+ order, its channels clipped and
 * stored as 8 bits (see intensity.ts) and its label values mapped to class indices 0..C-1 (background 0, then the
 * values of dataset.json in order). A slice is cut along an axis (axial = canonical k, inferior to superior),
 * resized to size × size with the 2-D path's cv2 arithmetic (linear for images, nearest for labels) and, with
 * context 1, carries its neighbours as extra channels (2.5-D; edges repeat the end slice).
 *
 * Slice planes: axial (x = i towards R, y = j towards A), coronal (x = i, y = k), sagittal (x = j, y = k).
 *
 * @example
 *   const p = await prepareCase(ds.cases[0]!, { intensity: { kind: 'ct' }, labels: ds.labels }); // prepare.ts
 *   const s = sliceOf(p, 'axial', 10, { size: 224, context: 1 }); // s.image: 3 × 224 × 224 floats
 */
import { UserError } from '../../errors.ts';
import { resizeLinearCv2, resizeNearestCv2 } from '../resize.ts';
import { dequantize, type IntensityMap } from './intensity.ts';
import type { Vec3 } from './volume.ts';

export type SliceAxis = 'axial' | 'coronal' | 'sagittal';
export const SLICE_AXES: readonly SliceAxis[] = ['axial', 'coronal', 'sagittal'];
/** The canonical voxel axis a slice axis cuts along. */
const AXIS: Record<SliceAxis, 0 | 1 | 2> = { sagittal: 0, coronal: 1, axial: 2 };

/** One case ready to slice: canonical 8-bit channels, class indices, the map back to intensities. */
export interface PreparedCase {
  id: string;
  /** Canonical dims (i towards R, j towards A, k towards S). */
  dims: Vec3;
  spacing: Vec3;
  channels: Uint8Array[];
  maps: IntensityMap[];
  /** Class index per voxel (canonical order), when the case has a label map. */
  labels?: Uint8Array;
  /** Bytes held by the arrays above (what a memory budget counts). */
  bytes: number;
}


/** value -> class index lookup (background first): the values of dataset.json in increasing order. */
export function classValues(labels: Map<number, string> | undefined): number[] | undefined {
  if (!labels) return undefined;
  const values = [...labels.keys()].sort((a, b) => a - b);
  if (values[0] !== 0) values.unshift(0);
  return values;
}

/** Label values to class indices; a value that is not a class (or not an integer) is a UserError naming the file. */
export function toClasses(data: Float32Array, values: number[], source: string): Uint8Array {
  const lookup = new Map<number, number>(values.map((v, k) => [v, k]));
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const k = lookup.get(data[i]!);
    if (k === undefined)
      throw new UserError(
        `${source}: label value ${data[i]} is not one of the classes (${values.length > 12 ? `0..${values.length - 1}` : values.join(', ')}); run "mobileutr check" on the dataset`,
      );
    out[i] = k;
  }
  return out;
}

/** Number of slices of a case along an axis. */
export const sliceCount = (p: PreparedCase, axis: SliceAxis) => p.dims[AXIS[axis]];

/** Width and height of the slice plane along an axis. */
export function slicePlane(dims: Vec3, axis: SliceAxis): [number, number] {
  return axis === 'axial' ? [dims[0], dims[1]] : axis === 'coronal' ? [dims[0], dims[2]] : [dims[1], dims[2]];
}

/** Copies slice `k` of a canonical volume into a width × height plane (row-major, x fastest). */
export function cutPlane<T extends Uint8Array | Float32Array>(data: T, dims: Vec3, axis: SliceAxis, k: number): T {
  const [nx, ny] = dims;
  const [w, h] = slicePlane(dims, axis);
  const out = new (data.constructor as new (n: number) => T)(w * h);
  if (axis === 'axial') out.set(data.subarray(k * nx * ny, (k + 1) * nx * ny));
  else if (axis === 'coronal') for (let z = 0; z < h; z++) out.set(data.subarray(nx * (k + ny * z), nx * (k + ny * z) + nx), z * w);
  else for (let z = 0; z < h; z++) for (let y = 0; y < w; y++) out[z * w + y] = data[k + nx * (y + ny * z)]!;
  return out;
}

/** Writes a w × h plane (x fastest) into slice `k` of a canonical volume: the inverse of {@link cutPlane}. */
export function pastePlane(volume: Uint8Array, dims: Vec3, axis: SliceAxis, k: number, planeData: Uint8Array): void {
  const [nx, ny] = dims;
  const [w, h] = slicePlane(dims, axis);
  if (axis === 'axial') volume.set(planeData, k * nx * ny);
  else if (axis === 'coronal') for (let z = 0; z < h; z++) volume.set(planeData.subarray(z * w, (z + 1) * w), nx * (k + ny * z));
  else for (let z = 0; z < h; z++) for (let y = 0; y < w; y++) volume[k + nx * (y + ny * z)] = planeData[z * w + y]!;
}

export interface SliceOptions {
  size: number;
  /** Neighbours on each side as extra channels (0 or 1). */
  context?: number;
}

export interface Slice {
  id: string;
  /** Network input [channels · (2·context + 1), size, size], channel-major, neighbours innermost. */
  image: Float32Array;
  /** Class index per pixel [size, size]; all 0 for a case without labels. */
  label: Uint8Array;
}

/** Input channels of a slice: volume channels times (2·context + 1). */
export const sliceChannels = (volumeChannels: number, context = 0) => volumeChannels * (2 * context + 1);

/** Slice `k` along `axis`, resized to size × size (cv2 linear for images, nearest for labels). */
export function sliceOf(p: PreparedCase, axis: SliceAxis, k: number, o: SliceOptions): Slice {
  const n = sliceCount(p, axis);
  if (!(Number.isInteger(k) && k >= 0 && k < n)) throw new RangeError(`slice ${k} of ${p.id}: the case has ${n} slices along ${axis}`);
  const context = o.context ?? 0;
  const [w, h] = slicePlane(p.dims, axis);
  const s = o.size;
  const image = new Float32Array(sliceChannels(p.channels.length, context) * s * s);
  let c = 0;
  p.channels.forEach((data, ch) => {
    for (let d = -context; d <= context; d++) {
      const at = Math.min(Math.max(k + d, 0), n - 1);
      const resized = resizeLinearCv2(cutPlane(data, p.dims, axis, at), w, h, 1, s, s);
      dequantize(resized, p.maps[ch]!, image.subarray(c * s * s, (c + 1) * s * s));
      c++;
    }
  });
  const label = p.labels ? resizeNearestCv2(cutPlane(p.labels, p.dims, axis, k), w, h, 1, s, s) : new Uint8Array(s * s);
  return { id: `${p.id}:${k}`, image, label };
}
