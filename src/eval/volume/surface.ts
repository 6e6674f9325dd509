/**
 * 3-D surface distances as medpy.metric.binary defines them (`__surface_distances`, `hd`, `hd95`, `assd`):
 * - the border of a mask is mask XOR binary_erosion(mask, 6-connected cross, 1 iteration), with scipy's default
 *   border_value 0: a voxel on the edge of the volume is a border voxel;
 * - the distances of one mask's border voxels to the other's border: the Euclidean distance transform of the
 *   complement of the other border, with `sampling` = the voxel spacing (edt.ts);
 * - HD95 = numpy.percentile(both directions concatenated, 95), linear interpolation; HD = the largest;
 *   ASSD = mean of the two directions' means.
 * Spacing [1, 1, 1] gives medpy's default (distances in voxels). Both masks must be non-empty (medpy raises there):
 * the functions return undefined instead, and the caller decides what an empty mask scores (score.ts).
 *
 * @example
 *   const s = surfaceMetrics(pred, truth, [512, 512, 90], [0.8, 0.8, 3]); // { hd95, hd, assd } in mm
 */
import { percentileSorted } from '../../data/volume/intensity.ts';
import type { Vec3 } from '../../data/volume/volume.ts';
import { boundingBox, boxDims, cropMask, unionBox } from './box.ts';
import { squaredDistanceTransform } from './edt.ts';

export interface SurfaceMetrics {
  /** 95th percentile of both directed surface-distance sets pooled. */
  hd95: number;
  /** Hausdorff distance: the largest surface distance. */
  hd: number;
  /** Average symmetric surface distance: the mean of the two directed means. */
  assd: number;
}

/** Border voxels of a 0/1 mask: set voxels with a 6-neighbour that is unset or outside the volume. */
export function borderOf(mask: Uint8Array, dims: Vec3): Uint8Array {
  const [nx, ny, nz] = dims;
  const sy = nx;
  const sz = nx * ny;
  const out = new Uint8Array(mask.length);
  let n = 0;
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++, n++) {
        if (!mask[n]) continue;
        const edge = x === 0 || y === 0 || z === 0 || x === nx - 1 || y === ny - 1 || z === nz - 1;
        if (edge || !mask[n - 1] || !mask[n + 1] || !mask[n - sy] || !mask[n + sy] || !mask[n - sz] || !mask[n + sz]) out[n] = 1;
      }
  return out;
}

/** medpy's `__surface_distances`: for each border voxel of `from`, the distance to the nearest border voxel of `to`. */
export function directedDistances(fromBorder: Uint8Array, toBorder: Uint8Array, dims: Vec3, spacing: Vec3, buffer?: Float64Array): Float64Array {
  const d2 = squaredDistanceTransform(toBorder, dims, spacing, buffer);
  let count = 0;
  for (let i = 0; i < fromBorder.length; i++) count += fromBorder[i]!;
  const out = new Float64Array(count);
  for (let i = 0, o = 0; i < fromBorder.length; i++) if (fromBorder[i]) out[o++] = Math.sqrt(d2[i]!);
  return out;
}

/**
 * HD95, HD and ASSD between two masks (any non-zero voxel is foreground, voxel order i fastest, spacing in mm),
 * or undefined when either mask is empty. Works on the masks' union bounding box only (exact: see box.ts).
 */
export function surfaceMetrics(result: Uint8Array, reference: Uint8Array, dims: Vec3, spacing: Vec3 = [1, 1, 1]): SurfaceMetrics | undefined {
  const rBox = boundingBox(result, dims);
  const gBox = boundingBox(reference, dims);
  if (!rBox || !gBox) return undefined;
  const box = unionBox(rBox, gBox)!;
  const cropDims = boxDims(box);
  const rBorder = borderOf(cropMask(result, dims, box), cropDims);
  const gBorder = borderOf(cropMask(reference, dims, box), cropDims);
  const buffer = new Float64Array(rBorder.length);
  const forward = directedDistances(rBorder, gBorder, cropDims, spacing, buffer);
  const backward = directedDistances(gBorder, rBorder, cropDims, spacing, buffer);
  const all = new Float64Array(forward.length + backward.length);
  all.set(forward);
  all.set(backward, forward.length);
  all.sort();
  return { hd95: percentileSorted(all, 95), hd: all[all.length - 1]!, assd: (mean(forward) + mean(backward)) / 2 };
}

/** medpy's hd95(result, reference, voxelspacing); NaN when either mask is empty. */
export function hd95(result: Uint8Array, reference: Uint8Array, dims: Vec3, spacing: Vec3 = [1, 1, 1]): number {
  return surfaceMetrics(result, reference, dims, spacing)?.hd95 ?? NaN;
}

function mean(xs: Float64Array): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s / xs.length;
}
