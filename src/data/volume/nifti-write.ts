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
import { gzipSync } from 'node:zlib';
import { writeWhole } from '../../io/write-whole.ts';
import { encodeLabelNifti, encodeProbabilityNifti, type LabelArray } from './nifti-encode.ts';
import type { NiftiGrid } from './volume.ts';

export { encodeLabelNifti, encodeProbabilityNifti, type LabelArray };
// predict's interrupt handler imports it from here
export { removePartialOutputs } from '../../io/write-whole.ts';

/**
 * Writes `labels` (in the source's voxel order) on `grid`; gzip when the path ends in .gz. The file appears whole
 * or not at all: it is written next to its place and renamed, so an interrupted run leaves no half-written file.
 */
export async function writeLabelNifti(path: string, labels: LabelArray, grid: NiftiGrid): Promise<void> {
  await writeNifti(path, encodeLabelNifti(labels, grid), 6);
}

/** Writes per-class probabilities (see {@link encodeProbabilityNifti}) atomically like {@link writeLabelNifti}; gzip level 1 (floats compress little). */
export async function writeProbabilityNifti(path: string, probabilities: Float32Array, classes: number, grid: NiftiGrid): Promise<void> {
  await writeNifti(path, encodeProbabilityNifti(probabilities, classes, grid), 1);
}

async function writeNifti(path: string, bytes: Uint8Array, level: number): Promise<void> {
  await writeWhole(path, path.endsWith('.gz') ? gzipSync(bytes, { level }) : bytes);
}
