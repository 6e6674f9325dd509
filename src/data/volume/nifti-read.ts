/**
 * Reading a NIfTI volume (.nii or .nii.gz, NIfTI-1 or -2, either byte order) into a {@link Volume}.
 *
 * @example
 *   const ct = await readNifti('case_0000.nii.gz');          // 3-D
 *   const t1 = await readNifti('bold.nii.gz', { volumeIndex: 0 }); // first volume of a 4-D file
 */
import { readFile } from 'node:fs/promises';
import { UserError } from '../../errors.ts';
import { gunzipExact, gunzipHead, isGzip } from './gunzip.ts';
import { parseNiftiHeader, type NiftiHeader } from './nifti-header.ts';
import { formatDims, voxelCount, type Volume, type VoxelType } from './volume.ts';

/**
 * Volumes with more voxels than this are refused from the header, before any voxel is inflated or read:
 * 2^28 voxels (a 512 x 512 x 1024 CT) decode to 1 GiB of float32.
 */
export const MAX_VOLUME_VOXELS = 2 ** 28;

export interface ReadNiftiOptions {
  /** Which volume of a 4-D (or higher) file to read; without it such a file is an error. */
  volumeIndex?: number;
  /** Refuse files whose header declares more voxels (all volumes together); default {@link MAX_VOLUME_VOXELS}. */
  maxVoxels?: number;
}

export async function readNifti(path: string, options: ReadNiftiOptions = {}): Promise<Volume> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new UserError(err.code === 'ENOENT' ? `${path}: file not found` : `${path}: cannot read (${err.message})`);
  }
  return decodeNifti(bytes, path, options);
}

/** The header of a NIfTI file's bytes (gzip or not) without touching the voxels. */
export function readNiftiHeader(bytes: Uint8Array, source: string): NiftiHeader {
  return parseNiftiHeader(isGzip(bytes) ? gunzipHead(bytes, source) : bytes, source);
}

/** Decodes a whole NIfTI file held in memory (what an HTTP body or a browser File gives). */
export function decodeNifti(bytes: Uint8Array, source: string, options: ReadNiftiOptions = {}): Volume {
  const header = readNiftiHeader(bytes, source);
  const { dims, volumes, bytesPerVoxel, voxOffset } = header;
  const n3 = voxelCount(dims);
  const total = n3 * volumes;
  const maxVoxels = options.maxVoxels ?? MAX_VOLUME_VOXELS;
  const shape = volumes > 1 ? `${formatDims(dims)}×${volumes}` : formatDims(dims);
  if (total > maxVoxels) throw new UserError(`${source}: ${shape} = ${total.toLocaleString('en-US')} voxels is more than the limit of ${maxVoxels.toLocaleString('en-US')}`);

  let index = 0;
  if (volumes > 1) {
    if (options.volumeIndex === undefined) throw new UserError(`${source}: a 4-D file (${shape}, ${volumes} volumes); pick one with --volume-index 0..${volumes - 1}`);
    index = options.volumeIndex;
    if (!Number.isInteger(index) || index < 0 || index >= volumes) throw new UserError(`${source}: --volume-index ${index} is out of range; the file has volumes 0..${volumes - 1}`);
  }

  const expected = voxOffset + total * bytesPerVoxel;
  const declared = `the header declares ${shape} ${header.type} voxels from offset ${voxOffset} (${expected} bytes)`;
  let file = bytes;
  if (isGzip(bytes)) file = gunzipExact(bytes, expected, source, declared);
  else if (bytes.length !== expected) throw new UserError(`${source}: the file has ${bytes.length} bytes, but ${declared}: header dimensions disagree with the data size${bytes.length < expected ? ' (truncated file?)' : ''}`);

  const start = voxOffset + index * n3 * bytesPerVoxel;
  const raw = file.subarray(start, start + n3 * bytesPerVoxel);
  return {
    dims: [...dims],
    spacing: [header.grid.pixdim[1]!, header.grid.pixdim[2]!, header.grid.pixdim[3]!],
    affine: header.affine,
    data: toFloat32(raw, header.type, header.littleEndian, header.scale),
    datatype: header.type,
    source,
    grid: header.grid,
  };
}

const READERS: Record<VoxelType, (v: DataView, at: number, le: boolean) => number> = {
  uint8: (v, at) => v.getUint8(at),
  int8: (v, at) => v.getInt8(at),
  uint16: (v, at, le) => v.getUint16(at, le),
  int16: (v, at, le) => v.getInt16(at, le),
  uint32: (v, at, le) => v.getUint32(at, le),
  int32: (v, at, le) => v.getInt32(at, le),
  uint64: (v, at, le) => Number(v.getBigUint64(at, le)),
  int64: (v, at, le) => Number(v.getBigInt64(at, le)),
  float32: (v, at, le) => v.getFloat32(at, le),
  float64: (v, at, le) => v.getFloat64(at, le),
};
const SIZES: Record<VoxelType, number> = { uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, uint64: 8, int64: 8, float32: 4, float64: 8 };

/** Stored voxels -> float32, scaling in float64 first (value * slope + inter, as nibabel's get_fdata). */
export function toFloat32(raw: Uint8Array, type: VoxelType, littleEndian: boolean, scale: { slope: number; inter: number } | null): Float32Array {
  const size = SIZES[type];
  const n = raw.length / size;
  const out = new Float32Array(n);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const read = READERS[type];
  if (scale) {
    const { slope, inter } = scale;
    for (let i = 0; i < n; i++) out[i] = read(view, i * size, littleEndian) * slope + inter;
  } else {
    for (let i = 0; i < n; i++) out[i] = read(view, i * size, littleEndian);
  }
  return out;
}
