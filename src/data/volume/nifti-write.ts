/**
 * Writing a label volume as NIfTI on the source grid: the same dims, pixdim, qform/sform codes, quaternion, offsets
 * and srow as the volume it was predicted from, so it overlays the source in 3D Slicer, ITK-SNAP and NiiVue.
 * A NIfTI-2 source is written as NIfTI-2 (its geometry is float64 and would not survive float32).
 * Per-class probabilities go the same way into one 4-D float32 file (dim[4] = classes, volume k = class k).
 *
 * @example
 *   const ct = await readNifti('case.nii.gz');
 *   await writeLabelNifti('case_pred.nii.gz', labels, ct.grid); // labels: Uint8Array in ct's voxel order
 *   await writeProbabilityNifti('case_prob.nii.gz', probs, 9, ct.grid); // probs: class-major, 9 × ct's voxels
 */
import { rmSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { UserError } from '../../errors.ts';
import { formatDims, voxelCount, type NiftiGrid } from './volume.ts';

export type LabelArray = Uint8Array | Int16Array;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The NIfTI file's bytes (not compressed): header, 4 empty extension bytes, voxels little endian. */
export function encodeLabelNifti(labels: LabelArray, grid: NiftiGrid, description = 'mobileutr labels'): Uint8Array {
  const n = voxelCount(grid.dims);
  if (labels.length !== n) throw new UserError(`label volume has ${labels.length} voxels, the grid ${formatDims(grid.dims)} has ${n}`);
  return encodeNifti(labels, 1, grid, description);
}

/**
 * A 4-D float32 NIfTI of per-class probabilities on the source grid: `probabilities` holds `classes` volumes one
 * after the other (class-major), each in the source's voxel order; dim = [4, nx, ny, nz, classes].
 */
export function encodeProbabilityNifti(probabilities: Float32Array, classes: number, grid: NiftiGrid, description = 'mobileutr probabilities'): Uint8Array {
  const n = voxelCount(grid.dims);
  if (!(Number.isInteger(classes) && classes >= 1) || probabilities.length !== n * classes)
    throw new UserError(`probability volume has ${probabilities.length} values, the grid ${formatDims(grid.dims)} × ${classes} classes has ${n * classes}`);
  return encodeNifti(probabilities, classes, grid, description);
}

function encodeNifti(data: LabelArray | Float32Array, volumes: number, grid: NiftiGrid, description: string): Uint8Array {
  const [code, bitpix] = data instanceof Uint8Array ? [2, 8] : data instanceof Int16Array ? [4, 16] : [16, 32];
  const v1 = grid.version === 1;
  const hdr = v1 ? 348 : 540;
  const offset = hdr + 4;
  const out = new Uint8Array(offset + data.byteLength);
  const v = new DataView(out.buffer);
  const le = true;
  const ascii = (at: number, s: string, max: number) => {
    for (let i = 0; i < Math.min(s.length, max - 1); i++) out[at + i] = s.charCodeAt(i) & 0x7f;
  };
  const dim = volumes > 1 ? [4, ...grid.dims, volumes, 1, 1, 1] : [3, ...grid.dims, 1, 1, 1, 1];
  if (v1) {
    v.setInt32(0, 348, le);
    dim.forEach((d, i) => v.setInt16(40 + i * 2, d, le));
    v.setInt16(70, code, le);
    v.setInt16(72, bitpix, le);
    grid.pixdim.forEach((p, i) => v.setFloat32(76 + i * 4, p, le));
    v.setFloat32(108, offset, le);
    v.setFloat32(112, 1, le); // scl_slope
    v.setFloat32(116, 0, le); // scl_inter
    out[123] = grid.xyztUnits;
    ascii(148, description, 80);
    v.setInt16(252, grid.qformCode, le);
    v.setInt16(254, grid.sformCode, le);
    [...grid.quatern, ...grid.qoffset].forEach((q, i) => v.setFloat32(256 + i * 4, q, le));
    grid.srow.flat().forEach((s, i) => v.setFloat32(280 + i * 4, s, le));
    ascii(344, 'n+1', 4);
  } else {
    v.setInt32(0, 540, le);
    out.set([0x6e, 0x2b, 0x32, 0, 0x0d, 0x0a, 0x1a, 0x0a], 4); // "n+2\0\r\n\032\n"
    v.setInt16(12, code, le);
    v.setInt16(14, bitpix, le);
    dim.forEach((d, i) => v.setBigInt64(16 + i * 8, BigInt(d), le));
    grid.pixdim.forEach((p, i) => v.setFloat64(104 + i * 8, p, le));
    v.setBigInt64(168, BigInt(offset), le);
    v.setFloat64(176, 1, le);
    v.setFloat64(184, 0, le);
    ascii(240, description, 80);
    v.setInt32(344, grid.qformCode, le);
    v.setInt32(348, grid.sformCode, le);
    [...grid.quatern, ...grid.qoffset].forEach((q, i) => v.setFloat64(352 + i * 8, q, le));
    grid.srow.flat().forEach((s, i) => v.setFloat64(400 + i * 8, s, le));
    v.setInt32(500, grid.xyztUnits, le);
  }
  if (data instanceof Uint8Array) out.set(data, offset);
  else if (LITTLE_ENDIAN_HOST) out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
  else if (data instanceof Int16Array) for (let i = 0; i < data.length; i++) v.setInt16(offset + i * 2, data[i]!, le);
  else for (let i = 0; i < data.length; i++) v.setFloat32(offset + i * 4, data[i]!, le);
  return out;
}

/**
 * Writes `labels` (in the source's voxel order) on `grid`; gzip when the path ends in .gz. The file appears whole
 * or not at all: it is written next to its place and renamed, so an interrupted run leaves no half-written file.
 */
export async function writeLabelNifti(path: string, labels: LabelArray, grid: NiftiGrid): Promise<void> {
  await writeWhole(path, encodeLabelNifti(labels, grid), 6);
}

/** Writes per-class probabilities (see {@link encodeProbabilityNifti}) atomically like {@link writeLabelNifti}; gzip level 1 (floats compress little). */
export async function writeProbabilityNifti(path: string, probabilities: Float32Array, classes: number, grid: NiftiGrid): Promise<void> {
  await writeWhole(path, encodeProbabilityNifti(probabilities, classes, grid), 1);
}

/** Temporary files being written now (removed by {@link removePartialOutputs}). */
const partial = new Set<string>();

/**
 * Removes the temporary files of writes still in flight, synchronously: for a SIGINT/SIGTERM handler, so that an
 * interrupted run leaves neither a half-written file nor its temporary behind.
 */
export function removePartialOutputs(): void {
  for (const tmp of partial) rmSync(tmp, { force: true });
  partial.clear();
}

async function writeWhole(path: string, bytes: Uint8Array, level: number): Promise<void> {
  const tmp = `${path}.partial-${process.pid}`;
  partial.add(tmp);
  try {
    await writeFile(tmp, path.endsWith('.gz') ? gzipSync(bytes, { level }) : bytes);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  } finally {
    partial.delete(tmp);
  }
}
