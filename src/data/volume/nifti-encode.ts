/**
 * NIfTI bytes on a source grid (pure: Node and the browser): a label map (uint8 or int16) or per-class
 * probabilities (4-D float32), with the source's dims, pixdim, qform/sform codes, quaternion, offsets and srow.
 * nifti-write.ts writes them to files; the browser app gzips them for download.
 */
import { UserError } from '../../errors.ts';
import { formatDims, voxelCount, type NiftiGrid } from './volume.ts';

export type LabelArray = Uint8Array | Int16Array;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Class indices (source voxel order) -> label values: uint8 when every value fits, else int16. */
export function labelValues(classes: Uint8Array, classValues: readonly number[]): LabelArray {
  const small = classValues.every((v) => v >= 0 && v <= 255);
  if (!small && !classValues.every((v) => v >= -32768 && v <= 32767)) throw new UserError(`label values ${classValues.join(', ')} do not fit in int16`);
  const out = small ? new Uint8Array(classes.length) : new Int16Array(classes.length);
  for (let i = 0; i < classes.length; i++) out[i] = classValues[classes[i]!]!;
  return out;
}

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

