/**
 * A 3-D scalar volume as every reader returns it: voxels i-fastest (NIfTI order), intensities after the file's
 * scaling, and the affine that maps voxel indices to RAS+ world millimetres (nibabel's convention).
 */

/** A 4 x 4 affine, row-major: `affine[r][c]`; world = affine · [i, j, k, 1]. */
export type Mat4 = number[][];
export type Vec3 = [number, number, number];

/** Stored voxel types we read (NIfTI datatype names; DICOM pixels map onto them). */
export type VoxelType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'uint64' | 'int64' | 'float32' | 'float64';

/**
 * The source grid as a NIfTI header spells it, kept so that a result written back (a label map) overlays the
 * source exactly: same dims, pixdim, qform/sform codes and parameters. Version 2 keeps the float64 fields.
 */
export interface NiftiGrid {
  version: 1 | 2;
  dims: Vec3;
  /** pixdim[0..7] as stored; pixdim[0] is qfac. */
  pixdim: number[];
  qformCode: number;
  sformCode: number;
  /** quatern_b, quatern_c, quatern_d. */
  quatern: Vec3;
  /** qoffset_x, qoffset_y, qoffset_z. */
  qoffset: Vec3;
  /** srow_x, srow_y, srow_z (3 rows of 4). */
  srow: number[][];
  xyztUnits: number;
}

export interface Volume {
  /** Voxels along i, j, k; `data[i + nx * (j + ny * k)]`. */
  dims: Vec3;
  /** Voxel size in mm along i, j, k (NIfTI pixdim[1..3]; DICOM column, row and slice spacing). */
  spacing: Vec3;
  /** Voxel -> RAS+ mm: the sform if its code is set, else the qform, else nibabel's fallback (see nifti-header.ts). */
  affine: Mat4;
  /** Intensities after scl_slope/scl_inter or RescaleSlope/Intercept, as float32. */
  data: Float32Array;
  /** What the file stores (before scaling). */
  datatype: VoxelType;
  /** Where the volume came from (file or folder), for messages. */
  source: string;
  /** Header geometry to write results on the same grid (see nifti-write.ts). */
  grid: NiftiGrid;
}

export const voxelCount = (dims: readonly number[]) => dims[0]! * dims[1]! * dims[2]!;
export const formatDims = (dims: readonly number[]) => dims.join('×');

export const identity4 = (): Mat4 => [
  [1, 0, 0, 0],
  [0, 1, 0, 0],
  [0, 0, 1, 0],
  [0, 0, 0, 1],
];

export function matmul4(a: Mat4, b: Mat4): Mat4 {
  const out = identity4();
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) out[r]![c] = a[r]![0]! * b[0]![c]! + a[r]![1]! * b[1]![c]! + a[r]![2]! * b[2]![c]! + a[r]![3]! * b[3]![c]!;
  return out;
}

/** World position of voxel (i, j, k). */
export function applyAffine(a: Mat4, ijk: readonly number[]): Vec3 {
  const [i, j, k] = ijk as [number, number, number];
  return [0, 1, 2].map((r) => a[r]![0]! * i + a[r]![1]! * j + a[r]![2]! * k + a[r]![3]!) as Vec3;
}

/** Largest absolute difference between two affines' entries (mm for the translation column). */
export function affineDistance(a: Mat4, b: Mat4): number {
  let d = 0;
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) d = Math.max(d, Math.abs(a[r]![c]! - b[r]![c]!));
  return d;
}

/** A grid for a volume that has no NIfTI header (DICOM): sform and qform both from the affine, code 1 (scanner). */
export function gridFromAffine(dims: Vec3, affine: Mat4, spacing: Vec3): NiftiGrid {
  const q = quaternFromAffine(affine);
  return {
    version: 1,
    dims: [...dims],
    pixdim: [q.qfac, spacing[0], spacing[1], spacing[2], 0, 0, 0, 0],
    qformCode: 1,
    sformCode: 1,
    quatern: float32Quatern(q.quatern),
    qoffset: [affine[0]![3]!, affine[1]![3]!, affine[2]![3]!],
    srow: affine.slice(0, 3).map((row) => [...row]),
    xyztUnits: 2, // mm
  };
}

/**
 * (b, c, d) as NIfTI-1 stores them (float32), chosen so that a = sqrt(1 - b² - c² - d²) comes back right. Near a
 * 180° turn (a ≈ 0, as for a flipped DICOM grid) plain rounding leaves 1 - b² - c² - d² at about +1e-7, so a reader
 * gets a ≈ 3e-4 and a rotation off by ~1e-3; scaling (b, c, d) up by a few float32 steps makes it ≤ 0, read as a = 0.
 */
export function float32Quatern(q: Vec3): Vec3 {
  const rounded = q.map(Math.fround) as Vec3;
  if (1 - (q[0] ** 2 + q[1] ** 2 + q[2] ** 2) > 1e-8) return rounded; // a clearly above 0: rounding is harmless
  for (let t = 0; t <= 64; t++) {
    const f = q.map((x) => Math.fround(x * (1 + t * 2 ** -25))) as Vec3;
    const w2 = 1 - (f[0] ** 2 + f[1] ** 2 + f[2] ** 2);
    if (w2 <= 0 && w2 > -2e-7) return f;
  }
  return rounded;
}

/**
 * Quaternion (b, c, d) and qfac of an affine's rotation, as nifti_mat44_to_quatern computes them (nifti1_io.c):
 * columns normalised, a left-handed frame flips the third column (qfac -1), then the proper rotation's quaternion.
 */
export function quaternFromAffine(affine: Mat4): { quatern: Vec3; qfac: 1 | -1 } {
  const col = (c: number) => [affine[0]![c]!, affine[1]![c]!, affine[2]![c]!];
  const cols = [0, 1, 2].map((c) => {
    const v = col(c);
    const n = Math.hypot(v[0]!, v[1]!, v[2]!) || 1;
    return v.map((x) => x / n);
  });
  const [x, y, z] = cols as [number[], number[], number[]];
  const det = x[0]! * (y[1]! * z[2]! - y[2]! * z[1]!) - y[0]! * (x[1]! * z[2]! - x[2]! * z[1]!) + z[0]! * (x[1]! * y[2]! - x[2]! * y[1]!);
  const qfac = det < 0 ? -1 : 1;
  if (qfac < 0) for (let r = 0; r < 3; r++) z[r] = -z[r]!;
  // r[row][col] of the proper rotation
  const r11 = x[0]!, r12 = y[0]!, r13 = z[0]!;
  const r21 = x[1]!, r22 = y[1]!, r23 = z[1]!;
  const r31 = x[2]!, r32 = y[2]!, r33 = z[2]!;
  let a = r11 + r22 + r33 + 1;
  let b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return { quatern: [b, c, d], qfac };
}
