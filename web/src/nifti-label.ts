// The label NIfTI the page downloads, on the source grid: the same dims, pixdim, qform/sform codes, quaternion,
// offsets and srow as the volume it was predicted from (NIfTI-2 stays NIfTI-2), so it overlays the source in
// 3D Slicer, ITK-SNAP and NiiVue. The bytes come from src/data/volume/nifti-encode.ts (shared with the CLI); gzip with
// the browser's CompressionStream.
import { encodeLabelNifti, type LabelArray } from '../../src/data/volume/nifti-encode.ts';
import type { NiftiGrid } from '../../src/data/volume/volume.ts';

export { encodeLabelNifti, type LabelArray };

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
