// A NIfTI file (.nii or .nii.gz, NIfTI-1 or -2, either byte order) read in the page: the browser part of
// src/data/volume/nifti-read.ts, which reads files with node:fs and inflates with node:zlib. The header is parsed
// by the shared, browser-safe src/data/volume/nifti-header.ts; the voxel count is checked from the header before
// anything more is inflated, and inflation stops at the size the header declares (gunzip.ts).
import { parseNiftiHeader, type NiftiHeader } from '../data/volume/nifti-header.ts';
import { formatDims, voxelCount, type Volume, type VoxelType } from '../data/volume/volume.ts';
import { gunzipExact, InflateError, isGzip } from './gunzip.ts';

/** 2^27 voxels (512 × 512 × 512) are 512 MiB as float32: about what a browser tab can hold next to the model. */
export const MAX_PAGE_VOXELS = 2 ** 27;

export class VolumeFileError extends Error {}

/** Largest NIfTI header (NIfTI-2). */
const HEAD = 540;

/** The header, refused (VolumeFileError) when the page cannot use the file: 4-D, too many voxels, bad header. */
function usableHeader(head: Uint8Array, name: string, maxVoxels: number): NiftiHeader {
  let h: NiftiHeader;
  try {
    h = parseNiftiHeader(head, name);
  } catch (e) {
    throw new VolumeFileError((e as Error).message);
  }
  const shape = h.volumes > 1 ? `${formatDims(h.dims)}×${h.volumes}` : formatDims(h.dims);
  if (h.volumes > 1)
    throw new VolumeFileError(`${name}: a 4-D file (${shape}, ${h.volumes} volumes); the page opens 3-D volumes only. Save one volume as its own file (e.g. fslroi, or nibabel's slicer) and open that.`);
  const n = voxelCount(h.dims);
  if (n > maxVoxels) throw new VolumeFileError(`${name}: ${shape} = ${n.toLocaleString('en-US')} voxels is more than the page's limit of ${maxVoxels.toLocaleString('en-US')}; use the command line (mobileutr predict) for it`);
  return h;
}

/** Decodes a whole .nii or .nii.gz held in memory into a Volume (float32 intensities after scl_slope/scl_inter). */
export async function readNiftiBytes(bytes: Uint8Array, name: string, maxVoxels = MAX_PAGE_VOXELS): Promise<Volume> {
  let header: NiftiHeader | undefined;
  const expectedSize = (h: NiftiHeader) => h.voxOffset + voxelCount(h.dims) * h.bytesPerVoxel;
  let file: Uint8Array;
  if (isGzip(bytes)) {
    try {
      file = await gunzipExact(bytes, HEAD, (head) => expectedSize((header = usableHeader(head, name, maxVoxels))));
    } catch (e) {
      if (e instanceof InflateError) throw new VolumeFileError(`${name}: ${e.message}`);
      throw e;
    }
  } else {
    header = usableHeader(bytes.subarray(0, HEAD), name, maxVoxels);
    const expected = expectedSize(header);
    if (bytes.length !== expected)
      throw new VolumeFileError(
        `${name}: the file has ${bytes.length} bytes, but the header declares ${formatDims(header.dims)} ${header.type} voxels from offset ${header.voxOffset} (${expected} bytes): ${bytes.length < expected ? 'truncated file?' : 'header dimensions disagree with the data size'}`,
      );
    file = bytes;
  }
  const h = header!;
  const raw = file.subarray(h.voxOffset, h.voxOffset + voxelCount(h.dims) * h.bytesPerVoxel);
  return {
    dims: [...h.dims],
    spacing: [h.grid.pixdim[1]!, h.grid.pixdim[2]!, h.grid.pixdim[3]!],
    affine: h.affine,
    data: toFloat32(raw, h.type, h.littleEndian, h.scale),
    datatype: h.type,
    source: name,
    grid: h.grid,
  };
}

const READERS: Record<VoxelType, [size: number, read: (v: DataView, at: number, le: boolean) => number]> = {
  uint8: [1, (v, at) => v.getUint8(at)],
  int8: [1, (v, at) => v.getInt8(at)],
  uint16: [2, (v, at, le) => v.getUint16(at, le)],
  int16: [2, (v, at, le) => v.getInt16(at, le)],
  uint32: [4, (v, at, le) => v.getUint32(at, le)],
  int32: [4, (v, at, le) => v.getInt32(at, le)],
  uint64: [8, (v, at, le) => Number(v.getBigUint64(at, le))],
  int64: [8, (v, at, le) => Number(v.getBigInt64(at, le))],
  float32: [4, (v, at, le) => v.getFloat32(at, le)],
  float64: [8, (v, at, le) => v.getFloat64(at, le)],
};

/** Stored voxels -> float32, scaled in float64 first (value · slope + inter), as nifti-read.ts does on Node. */
function toFloat32(raw: Uint8Array, type: VoxelType, littleEndian: boolean, scale: { slope: number; inter: number } | null): Float32Array {
  const [size, read] = READERS[type];
  const n = raw.length / size;
  const out = new Float32Array(n);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const slope = scale?.slope ?? 1;
  const inter = scale?.inter ?? 0;
  for (let i = 0; i < n; i++) out[i] = read(view, i * size, littleEndian) * slope + inter;
  return out;
}
