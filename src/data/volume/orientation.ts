/**
 * Voxel-axis orientation and the canonical (RAS+, closest axes) layout that slicing uses: voxel axis 0 runs
 * towards the patient's Right, axis 1 towards Anterior, axis 2 towards Superior, so "axial slice k" means the
 * same thing for every file. Only axis permutations and flips are applied, never resampling, so going to
 * canonical and back is exact. The canonical volume keeps the source's `grid`: map results back with
 * {@link fromCanonical} before writing them on it.
 *
 * @example
 *   const { volume: ras, reorientation } = toCanonical(ct);  // ras.data[i + nx*(j + ny*k)], k = inferior->superior
 *   const labelsOnSource = fromCanonical(predicted, reorientation); // back to ct's voxel order
 */
import { matmul4, type Mat4, type Vec3, type Volume } from './volume.ts';

/** For each voxel axis: the world axis it runs closest to (0 = R, 1 = A, 2 = S) and the sign (+1 towards R/A/S). */
export type Orientation = { axis: 0 | 1 | 2; sign: 1 | -1 }[];

/** nibabel's io_orientation, greedy on the direction cosines: the closest world axis for each voxel axis. */
export function orientationOf(affine: Mat4): Orientation {
  const cos = [0, 1, 2].map((c) => {
    const v = [affine[0]![c]!, affine[1]![c]!, affine[2]![c]!];
    const n = Math.hypot(v[0]!, v[1]!, v[2]!) || 1;
    return v.map((x) => x / n); // cos[voxel axis][world axis]
  });
  const out: Orientation = [];
  const usedVoxel = new Set<number>();
  const usedWorld = new Set<number>();
  for (let pick = 0; pick < 3; pick++) {
    let best = { c: -1, r: -1, v: -1 };
    for (let c = 0; c < 3; c++) for (let r = 0; r < 3; r++) if (!usedVoxel.has(c) && !usedWorld.has(r) && Math.abs(cos[c]![r]!) > best.v) best = { c, r, v: Math.abs(cos[c]![r]!) };
    usedVoxel.add(best.c);
    usedWorld.add(best.r);
    out[best.c] = { axis: best.r as 0 | 1 | 2, sign: cos[best.c]![best.r]! < 0 ? -1 : 1 };
  }
  return out;
}

/** nibabel's aff2axcodes: the direction each voxel axis runs towards, e.g. 'RAS' or 'LPS'. */
export function axisCodes(affine: Mat4): string {
  return orientationOf(affine)
    .map(({ axis, sign }) => (sign > 0 ? 'RAS' : 'LPI')[axis])
    .join('');
}

/** How a volume was reoriented, to map results back (see {@link fromCanonical}). */
export interface Reorientation {
  /** The source's voxel dims and orientation. */
  sourceDims: Vec3;
  orientation: Orientation;
  /** Dims in the canonical layout. */
  dims: Vec3;
}

type Numeric = Float32Array | Float64Array | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array;

/** Visits every canonical voxel in order with the index of the same voxel in the source layout. */
function walk(r: Reorientation, visit: (canonical: number, source: number) => void): void {
  const [sx, sy] = r.sourceDims;
  const strides = [1, sx, sx * sy];
  let base = 0;
  const step = [0, 0, 0];
  r.orientation.forEach(({ axis, sign }, a) => {
    step[axis] = sign * strides[a]!;
    if (sign < 0) base += (r.sourceDims[a]! - 1) * strides[a]!;
  });
  const [nx, ny, nz] = r.dims;
  let n = 0;
  for (let z = 0; z < nz; z++)
    for (let y = 0; y < ny; y++) {
      let s = base + z * step[2]! + y * step[1]!;
      for (let x = 0; x < nx; x++, s += step[0]!) visit(n++, s);
    }
}

export function reorientation(dims: Vec3, affine: Mat4): Reorientation {
  const orientation = orientationOf(affine);
  const canon = [0, 0, 0] as Vec3;
  orientation.forEach(({ axis }, a) => (canon[axis] = dims[a]!));
  return { sourceDims: [...dims], orientation, dims: canon };
}

/** The canonical affine: the source affine composed with the index map canonical -> source. */
export function canonicalAffine(affine: Mat4, r: Reorientation): Mat4 {
  const t: Mat4 = [
    [0, 0, 0, 0],
    [0, 0, 0, 0],
    [0, 0, 0, 0],
    [0, 0, 0, 1],
  ];
  r.orientation.forEach(({ axis, sign }, a) => {
    t[a]![axis] = sign;
    t[a]![3] = sign < 0 ? r.sourceDims[a]! - 1 : 0;
  });
  return matmul4(affine, t);
}

/** Source voxel order -> canonical voxel order. */
export function toCanonicalData<T extends Numeric>(data: T, r: Reorientation): T {
  const out = new (data.constructor as new (n: number) => T)(data.length);
  walk(r, (c, s) => (out[c] = data[s]!));
  return out;
}

/** Canonical voxel order -> source voxel order: the exact inverse of {@link toCanonicalData}. */
export function fromCanonical<T extends Numeric>(data: T, r: Reorientation): T {
  const out = new (data.constructor as new (n: number) => T)(data.length);
  walk(r, (c, s) => (out[s] = data[c]!));
  return out;
}

/** The volume in RAS+ closest-axes layout (data, dims, spacing, affine), and how to map results back. */
export function toCanonical(volume: Volume): { volume: Volume; reorientation: Reorientation } {
  const r = reorientation(volume.dims, volume.affine);
  const spacing = [0, 0, 0] as Vec3;
  r.orientation.forEach(({ axis }, a) => (spacing[axis] = volume.spacing[a]!));
  return {
    volume: { ...volume, dims: r.dims, spacing, affine: canonicalAffine(volume.affine, r), data: toCanonicalData(volume.data, r) },
    reorientation: r,
  };
}
