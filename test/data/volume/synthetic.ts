/**
 * Small synthetic NIfTI-1 volumes for dataset, check and slice tests: any of uint8, int16, float32 voxels on a grid
 * given by spacing and origin (axis-aligned RAS+ unless an affine is given), written with the label writer's header.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeLabelNifti } from '../../../src/data/volume/nifti-write.ts';
import { gridFromAffine, type Mat4, type Vec3 } from '../../../src/data/volume/volume.ts';

export interface SyntheticGrid {
  dims: Vec3;
  spacing?: Vec3;
  origin?: Vec3;
  affine?: Mat4;
}

export function syntheticAffine(g: SyntheticGrid): Mat4 {
  if (g.affine) return g.affine;
  const [sx, sy, sz] = g.spacing ?? [1, 1, 1];
  const [ox, oy, oz] = g.origin ?? [0, 0, 0];
  return [
    [sx, 0, 0, ox],
    [0, sy, 0, oy],
    [0, 0, sz, oz],
    [0, 0, 0, 1],
  ];
}

/** Writes `data` (i fastest) as NIfTI-1 at `path` (.nii or .nii.gz), creating folders. */
export function writeSyntheticNifti(path: string, g: SyntheticGrid, data: Uint8Array | Int16Array | Float32Array): void {
  const affine = syntheticAffine(g);
  const spacing = [0, 1, 2].map((c) => Math.hypot(affine[0]![c]!, affine[1]![c]!, affine[2]![c]!)) as Vec3;
  const grid = gridFromAffine(g.dims, affine, spacing);
  const header = encodeLabelNifti(new Uint8Array(data.length), grid).subarray(0, 352);
  const [code, bitpix] = data instanceof Uint8Array ? [2, 8] : data instanceof Int16Array ? [4, 16] : [16, 32];
  const out = new Uint8Array(352 + data.byteLength);
  out.set(header);
  const view = new DataView(out.buffer);
  view.setInt16(70, code, true);
  view.setInt16(72, bitpix, true);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 352); // little-endian hosts
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, path.endsWith('.gz') ? gzipSync(out) : out);
}

/** Fills a volume from f(i, j, k). */
export function fill<T extends Uint8Array | Int16Array | Float32Array>(make: new (n: number) => T, dims: Vec3, f: (i: number, j: number, k: number) => number): T {
  const [nx, ny, nz] = dims;
  const out = new make(nx * ny * nz);
  for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) out[i + nx * (j + ny * k)] = f(i, j, k);
  return out;
}
