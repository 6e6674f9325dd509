/**
 * Bounding boxes of label values and crops to them. Surface distances only need the voxels inside the union box of
 * both masks: the nearest border voxel of one mask lies in its own box, and a box that holds a mask tightly has only
 * background around it, so a crop changes no border voxel and no distance.
 */
import type { Vec3 } from '../../data/volume/volume.ts';

/** Voxels lo[a] <= x < hi[a] along each axis. */
export interface Box {
  lo: Vec3;
  hi: Vec3;
}

export const boxDims = (b: Box): Vec3 => [b.hi[0] - b.lo[0], b.hi[1] - b.lo[1], b.hi[2] - b.lo[2]];

/** The smallest box holding every voxel equal to `value` (any non-zero voxel when `value` is undefined). */
export function boundingBox(labels: Uint8Array, dims: Vec3, value?: number): Box | undefined {
  const [nx, ny, nz] = dims;
  const lo: Vec3 = [nx, ny, nz];
  const hi: Vec3 = [0, 0, 0];
  let n = 0;
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++)
      for (let x = 0; x < nx; x++, n++) {
        const v = labels[n]!;
        if (value === undefined ? v === 0 : v !== value) continue;
        if (x < lo[0]) lo[0] = x;
        if (x >= hi[0]) hi[0] = x + 1;
        if (y < lo[1]) lo[1] = y;
        if (y >= hi[1]) hi[1] = y + 1;
        if (z < lo[2]) lo[2] = z;
        if (z >= hi[2]) hi[2] = z + 1;
      }
  return hi[0] > 0 ? { lo, hi } : undefined;
}

export function unionBox(a: Box | undefined, b: Box | undefined): Box | undefined {
  if (!a || !b) return a ?? b;
  return {
    lo: [Math.min(a.lo[0], b.lo[0]), Math.min(a.lo[1], b.lo[1]), Math.min(a.lo[2], b.lo[2])],
    hi: [Math.max(a.hi[0], b.hi[0]), Math.max(a.hi[1], b.hi[1]), Math.max(a.hi[2], b.hi[2])],
  };
}

/** The 0/1 mask of `value` (any non-zero when undefined) inside `box`, in the box's own dims (x fastest). */
export function cropMask(labels: Uint8Array, dims: Vec3, box: Box, value?: number): Uint8Array {
  const [nx, ny] = dims;
  const [bx, by, bz] = boxDims(box);
  const out = new Uint8Array(bx * by * bz);
  let o = 0;
  for (let z = 0; z < bz; z++)
    for (let y = 0; y < by; y++) {
      const row = box.lo[0] + nx * (box.lo[1] + y + ny * (box.lo[2] + z));
      for (let x = 0; x < bx; x++, o++) {
        const v = labels[row + x]!;
        out[o] = (value === undefined ? v !== 0 : v === value) ? 1 : 0;
      }
    }
  return out;
}
