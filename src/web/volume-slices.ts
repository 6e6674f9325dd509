// Slices of a canonical (RAS+) volume as network inputs for the page: the training code itself
// (src/data/volume/slices.ts: cutPlane, sliceOf, pastePlane), plus the input of a 2-D image model for a slice.
import { resizeLinearCv2 } from '../data/resize.ts';
import type { IntensityMap } from '../data/volume/intensity.ts';
import { cutPlane, sliceOf, slicePlane, type SliceAxis } from '../data/volume/slices.ts';
import type { Vec3 } from '../data/volume/volume.ts';
import { pixelsToTensor } from '../pipeline/normalize.ts';

export { cutPlane, pastePlane, slicePlane } from '../data/volume/slices.ts';

const AXIS: Record<SliceAxis, 0 | 1 | 2> = { sagittal: 0, coronal: 1, axial: 2 };

export const sliceCount = (dims: Vec3, axis: SliceAxis): number => dims[AXIS[axis]];

/**
 * Input [2·context + 1, size, size] of a model trained on volumes, for slice k of one 8-bit channel (codes over
 * map.lo..map.hi): exactly sliceOf, as training prepares slices.
 */
export function volumeSliceInput(q: Uint8Array, map: IntensityMap, dims: Vec3, axis: SliceAxis, k: number, size: number, context: number): Float32Array {
  return sliceOf({ id: 'page', dims, spacing: [1, 1, 1], channels: [q], maps: [map], bytes: q.byteLength }, axis, k, { size, context }).image;
}

/**
 * Input [inChannels, size, size] of a model trained on 2-D images, for slice k of an 8-bit (windowed) volume: the
 * slice is the grey picture the model would get from a PNG (cv2 linear resize, then pixelsToTensor).
 */
export function imageSliceInput(q: Uint8Array, dims: Vec3, axis: SliceAxis, k: number, size: number, inChannels: number): Float32Array {
  const [w, h] = slicePlane(dims, axis);
  return pixelsToTensor(resizeLinearCv2(cutPlane(q, dims, axis, k), w, h, 1, size, size), size, size, 1, inChannels);
}
