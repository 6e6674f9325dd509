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
import { encodeLabelNifti, encodeProbabilityNifti, type LabelArray } from './nifti-encode.ts';
import type { NiftiGrid } from './volume.ts';

export { encodeLabelNifti, encodeProbabilityNifti, type LabelArray };

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
