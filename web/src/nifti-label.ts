// The label NIfTI the page downloads, on the source grid: the same dims, pixdim, qform/sform codes, quaternion,
// offsets and srow as the volume it was predicted from (NIfTI-2 stays NIfTI-2), so it overlays the source in
// 3D Slicer, ITK-SNAP and NiiVue. The browser twin of encodeLabelNifti in src/data/volume/nifti-write.ts (which
// imports node:fs and node:zlib); gzip with the browser's CompressionStream.
import { formatDims, voxelCount, type NiftiGrid } from '../../src/data/volume/volume.ts';

export type LabelArray = Uint8Array | Int16Array;

/** Uncompressed NIfTI bytes: header, 4 empty extension bytes, voxels little endian (uint8, or int16). */
export function encodeLabelNifti(labels: LabelArray, grid: NiftiGrid, description = 'mobileutr labels'): Uint8Array {
  const n = voxelCount(grid.dims);
  if (labels.length !== n) throw new Error(`label volume has ${labels.length} voxels, the grid ${formatDims(grid.dims)} has ${n}`);
  const [code, bitpix] = labels instanceof Uint8Array ? [2, 8] : [4, 16];
  const v1 = grid.version === 1;
  const offset = (v1 ? 348 : 540) + 4;
  const out = new Uint8Array(offset + labels.byteLength);
  const v = new DataView(out.buffer);
  const le = true;
  const ascii = (at: number, s: string, max: number) => {
    for (let i = 0; i < Math.min(s.length, max - 1); i++) out[at + i] = s.charCodeAt(i) & 0x7f;
  };
  const dim = [3, ...grid.dims, 1, 1, 1, 1];
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
  if (labels instanceof Uint8Array) out.set(labels, offset);
  else for (let i = 0; i < labels.length; i++) v.setInt16(offset + i * 2, labels[i]!, le);
  return out;
}

/** Class indices (source voxel order) -> label values: uint8 when every value fits, else int16. */
export function labelValues(classes: Uint8Array, classValues: readonly number[]): LabelArray {
  const small = classValues.every((v) => v >= 0 && v <= 255);
  if (!small && !classValues.every((v) => v >= -32768 && v <= 32767)) throw new Error(`label values ${classValues.join(', ')} do not fit in int16`);
  const out = small ? new Uint8Array(classes.length) : new Int16Array(classes.length);
  for (let i = 0; i < classes.length; i++) out[i] = classValues[classes[i]!]!;
  return out;
}

/** A .nii.gz Blob of the labels on `grid`. */
export async function labelNiftiGz(labels: LabelArray, grid: NiftiGrid): Promise<Blob> {
  const raw = encodeLabelNifti(labels, grid) as Uint8Array<ArrayBuffer>;
  const gz = new Blob([raw]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Response(gz, { headers: { 'Content-Type': 'application/gzip' } }).blob();
}
