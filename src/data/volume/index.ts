/**
 * Volumes (CT, MRI): NIfTI files and DICOM series folders in, label NIfTI out on the source grid.
 *
 * @example
 *   const ct = await readVolume('images/case_01.nii.gz');   // or a DICOM series folder: 'images/case_01/'
 *   const { volume: ras, reorientation } = toCanonical(ct); // slice ras.data along k (axial)
 *   await writeLabelNifti('case_01.nii.gz', fromCanonical(labels, reorientation), ct.grid);
 */
import { stat } from 'node:fs/promises';
import { UserError } from '../../errors.ts';
import { readDicomSeries } from './dicom-series.ts';
import { readNifti, type ReadNiftiOptions } from './nifti-read.ts';
import type { Volume } from './volume.ts';

// reading
export { MAX_VOLUME_VOXELS, decodeNifti, readNifti, readNiftiHeader, type ReadNiftiOptions } from './nifti-read.ts';
export { readDicomSeries, type ReadDicomOptions } from './dicom-series.ts';
export { TRANSFER_SYNTAXES, canDecode, transferSyntaxName } from './dicom-decode.ts';
// writing
export { encodeLabelNifti, writeLabelNifti, type LabelArray } from './nifti-write.ts';
// geometry
export { axisCodes, fromCanonical, orientationOf, toCanonical, toCanonicalData, type Orientation, type Reorientation } from './orientation.ts';
export { bestAffine, qformAffine } from './nifti-header.ts';
export { affineDistance, applyAffine, formatDims, voxelCount, type Mat4, type NiftiGrid, type Vec3, type Volume, type VoxelType } from './volume.ts';

// datasets, check, training slices
export { detectVolumeLayout, readDatasetJson, scanVolumeDataset, type VolumeCase, type VolumeDataset, type VolumeLayout } from './dataset.ts';
export { checkVolumeDataset } from './check.ts';
export { dequantize, intensityMap, parseIntensity, parseWindow, quantize, type Intensity, type IntensityMap } from './intensity.ts';
export { SLICE_AXES, cutPlane, pastePlane, slicePlane, sliceCount, sliceOf, type PreparedCase, type Slice, type SliceAxis } from './slices.ts';
export { caseFromVolumes, prepareCase, type PrepareOptions } from './prepare.ts';
export { DEFAULT_MEMORY_BYTES, SliceLoader, VolumeCache, splitCases, type SliceBatch, type SliceLoaderOptions } from './loader.ts';

/** File names that are NIfTI volumes. */
export const isNiftiPath = (path: string) => /\.nii(\.gz)?$/i.test(path);

/**
 * Reads a `.nii`/`.nii.gz` file or a folder holding one DICOM series, with its grid (dims, spacing, affine).
 *
 * @example
 * ```ts
 * const ct = await readVolume('case_0001.nii.gz');
 * console.log(ct.dims, ct.spacing);
 * ```
 */
export async function readVolume(path: string, options: ReadNiftiOptions = {}): Promise<Volume> {
  if (isNiftiPath(path)) return readNifti(path, options);
  const s = await stat(path).catch(() => undefined);
  if (!s) throw new UserError(`${path}: not found`);
  if (s.isDirectory()) return readDicomSeries(path, options);
  throw new UserError(`${path}: not a volume (a .nii or .nii.gz file, or a folder holding one DICOM series)`);
}
export { VOLUME_META_KEY, classTable, volumeMetaFrom, volumeMetadata, type VolumeModelMeta } from './model-meta.ts';
