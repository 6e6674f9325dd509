/**
 * NIfTI-1 and NIfTI-2 headers, either byte order. nifti-reader-js parses the fields; the geometry follows nibabel
 * (sform if its code is set, else qform, else pixdim), computed here because the library prefers the qform when
 * qform_code > sform_code and keeps the srow fields only when it picks the sform, while a writer needs both.
 */
import { NIFTI1, NIFTI2 } from 'nifti-reader-js';
import { UserError } from '../../errors.ts';
import type { Mat4, NiftiGrid, Vec3, VoxelType } from './volume.ts';

/** Datatype code -> what we read. Everything else (binary, complex, RGB, float128) is refused by name. */
export const NIFTI_TYPES = new Map<number, { type: VoxelType; bytes: number }>([
  [2, { type: 'uint8', bytes: 1 }],
  [4, { type: 'int16', bytes: 2 }],
  [8, { type: 'int32', bytes: 4 }],
  [16, { type: 'float32', bytes: 4 }],
  [64, { type: 'float64', bytes: 8 }],
  [256, { type: 'int8', bytes: 1 }],
  [512, { type: 'uint16', bytes: 2 }],
  [768, { type: 'uint32', bytes: 4 }],
  [1024, { type: 'int64', bytes: 8 }],
  [1280, { type: 'uint64', bytes: 8 }],
]);

const UNSUPPORTED_TYPES = new Map<number, string>([
  [0, 'unknown (0)'],
  [1, 'binary (1 bit)'],
  [32, 'complex64'],
  [128, 'RGB24'],
  [1536, 'float128'],
  [1792, 'complex128'],
  [2048, 'complex256'],
  [2304, 'RGBA32'],
]);

export interface NiftiHeader {
  littleEndian: boolean;
  /** Size of the 3-D grid; dims[i] for i > dim[0] count as 1. */
  dims: Vec3;
  /** Volumes along dims 4..7 (1 for a 3-D file). */
  volumes: number;
  datatypeCode: number;
  type: VoxelType;
  bytesPerVoxel: number;
  voxOffset: number;
  /** null when scl_slope is 0 or not finite (no scaling, as in nibabel). */
  scale: { slope: number; inter: number } | null;
  grid: NiftiGrid;
  affine: Mat4;
}

const MAGIC1 = 'n+1\0';
const MAGIC2 = 'n+2\0\r\n\x1a\n';
const str = (b: Uint8Array, at: number, n: number) => String.fromCharCode(...b.subarray(at, at + n));

/** Parses the header at the start of `head` (at least 348 or 540 bytes of the inflated file). */
export function parseNiftiHeader(head: Uint8Array, source: string): NiftiHeader {
  if (head.length < 348) throw new UserError(`${source}: too short for a NIfTI header (${head.length} bytes)`);
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const size = view.getInt32(0, true);
  const sizeBE = view.getInt32(0, false);
  const version = size === 348 || sizeBE === 348 ? 1 : size === 540 || sizeBE === 540 ? 2 : 0;
  if (version === 0) throw new UserError(`${source}: not a NIfTI file (sizeof_hdr is neither 348 nor 540)`);
  if (version === 2 && head.length < 540) throw new UserError(`${source}: too short for a NIfTI-2 header (${head.length} bytes)`);
  const magic = version === 1 ? str(head, 344, 4) : str(head, 4, 8);
  if (version === 1 && magic === 'ni1\0') throw new UserError(`${source}: a NIfTI .hdr/.img pair; only single-file NIfTI (.nii, .nii.gz) is read — convert it, e.g. with nibabel or fslchfiletype`);
  if (magic !== (version === 1 ? MAGIC1 : MAGIC2)) throw new UserError(`${source}: not a single-file NIfTI-${version} (magic ${JSON.stringify(magic)})`);

  const buffer = head.buffer.slice(head.byteOffset, head.byteOffset + (version === 1 ? 348 : 540)) as ArrayBuffer;
  const h = version === 1 ? new NIFTI1() : new NIFTI2();
  h.readHeader(buffer);
  const le = h.littleEndian;

  const ndim = h.dims[0]!;
  if (ndim < 1 || ndim > 7) throw new UserError(`${source}: dim[0] is ${ndim}, not 1..7 (corrupt header?)`);
  const dim = (i: number) => (i <= ndim ? h.dims[i]! : 1);
  const dims: Vec3 = [dim(1), dim(2), dim(3)];
  let volumes = 1;
  for (let i = 4; i <= 7; i++) volumes *= dim(i);
  if ([...dims, volumes].some((d) => !Number.isSafeInteger(d) || d < 1)) throw new UserError(`${source}: header dimensions ${h.dims.slice(1, ndim + 1).join('×')} are not all positive`);

  const code = h.datatypeCode;
  const known = NIFTI_TYPES.get(code);
  if (!known) {
    const name = UNSUPPORTED_TYPES.get(code);
    throw new UserError(`${source}: NIfTI datatype ${name ?? `code ${code}`} is not supported; volumes must hold one integer or float value per voxel (uint8..uint64, int8..int64, float32, float64)`);
  }
  const voxOffset = Math.floor(Number(h.vox_offset));
  if (!(voxOffset >= (version === 1 ? 348 : 540))) throw new UserError(`${source}: vox_offset ${h.vox_offset} points inside the header`);

  const slope = h.scl_slope;
  const inter = h.scl_inter;
  let scale: NiftiHeader['scale'] = null;
  if (Number.isFinite(slope) && slope !== 0) {
    if (!Number.isFinite(inter)) throw new UserError(`${source}: scl_slope is ${slope} but scl_inter is ${inter}`);
    if (slope !== 1 || inter !== 0) scale = { slope, inter };
  }

  // srow_x/y/z: NIfTI-1 float32 at 280, NIfTI-2 float64 at 400
  const srow = [0, 1, 2].map((r) => [0, 1, 2, 3].map((c) => (version === 1 ? view.getFloat32(280 + (r * 4 + c) * 4, le) : view.getFloat64(400 + (r * 4 + c) * 8, le))));
  const grid: NiftiGrid = {
    version,
    dims,
    pixdim: [...h.pixDims].slice(0, 8),
    qformCode: h.qform_code,
    sformCode: h.sform_code,
    quatern: [h.quatern_b, h.quatern_c, h.quatern_d],
    qoffset: [h.qoffset_x, h.qoffset_y, h.qoffset_z],
    srow,
    xyztUnits: h.xyzt_units,
  };
  return { littleEndian: le, dims, volumes, datatypeCode: code, type: known.type, bytesPerVoxel: known.bytes, voxOffset, scale, grid, affine: bestAffine(grid, source) };
}

/** nibabel's get_best_affine: the sform if sform_code > 0, else the qform if qform_code > 0, else from pixdim. */
export function bestAffine(grid: NiftiGrid, source = 'NIfTI'): Mat4 {
  if (grid.sformCode > 0) return [...grid.srow.map((r) => [...r]), [0, 0, 0, 1]];
  if (grid.qformCode > 0) return qformAffine(grid, source);
  // nibabel's base affine (shape_zoom_affine with an x flip, origin at the centre)
  const [nx, ny, nz] = grid.dims;
  const [zx, zy, zz] = [grid.pixdim[1]!, grid.pixdim[2]!, grid.pixdim[3]!].map((z) => z || 1) as Vec3;
  return [
    [-zx, 0, 0, (zx * (nx - 1)) / 2],
    [0, zy, 0, (-zy * (ny - 1)) / 2],
    [0, 0, zz, (-zz * (nz - 1)) / 2],
    [0, 0, 0, 1],
  ];
}

/** The qform (NIfTI method 2): quaternion rotation, pixdim zooms, qfac on the third column, qoffset. */
export function qformAffine(grid: NiftiGrid, source = 'NIfTI'): Mat4 {
  const [b, c, d] = grid.quatern;
  let w2 = 1 - (b * b + c * c + d * d);
  if (w2 < 0) {
    // nibabel's fillpositive: float32 rounding may leave w2 slightly negative
    if (w2 < -3 * 1.1920929e-7) throw new UserError(`${source}: qform quaternion (${b}, ${c}, ${d}) has norm above 1`);
    w2 = 0;
  }
  const a = Math.sqrt(w2);
  const R = [
    [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
    [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
    [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - b * b - c * c],
  ];
  const qfac = grid.pixdim[0]! < 0 ? -1 : 1;
  const zooms = [grid.pixdim[1]!, grid.pixdim[2]!, grid.pixdim[3]! * qfac];
  return [...R.map((row, r) => [...row.map((v, k) => v * zooms[k]!), grid.qoffset[r]!]), [0, 0, 0, 1]];
}
