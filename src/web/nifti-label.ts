// The label NIfTI the page downloads, on the source grid: the same dims, pixdim, qform/sform codes, quaternion,
// offsets and srow as the volume it was predicted from (NIfTI-2 stays NIfTI-2), so it overlays the source in
// 3D Slicer, ITK-SNAP and NiiVue. The bytes come from src/data/volume/nifti-encode.ts (shared with the CLI); gzip with
// the browser's CompressionStream.
import { encodeLabelNifti, labelValues, type LabelArray } from '../data/volume/nifti-encode.ts';
import type { NiftiGrid } from '../data/volume/volume.ts';

export { encodeLabelNifti, labelValues, type LabelArray };

/** A .nii.gz Blob of the labels on `grid`. */
export async function labelNiftiGz(labels: LabelArray, grid: NiftiGrid): Promise<Blob> {
  const raw = encodeLabelNifti(labels, grid) as Uint8Array<ArrayBuffer>;
  const gz = new Blob([raw]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Response(gz, { headers: { 'Content-Type': 'application/gzip' } }).blob();
}
