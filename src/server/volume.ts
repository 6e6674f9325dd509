/**
 * Volumes over HTTP: telling a NIfTI body from an image by its bytes, the header checks done on the main thread
 * before anything is inflated, and the JSON answer.
 */
import type { VolumeModelMeta } from '../data/volume/model-meta.ts';
import { readNiftiHeader } from '../data/volume/nifti-read.ts';
import { formatDims, voxelCount } from '../data/volume/volume.ts';
import { UserError } from '../errors.ts';
import { HttpError } from './errors.ts';
import type { VolumeSummary } from './volume-worker.ts';

/** Raw-body content types for volumes (besides application/octet-stream and multipart/form-data). */
export const VOLUME_CONTENT_TYPES = ['application/gzip', 'application/x-gzip', 'application/nifti', 'application/x-nifti'] as const;

/** The source name in messages about an uploaded volume. */
export const VOLUME_SOURCE = 'uploaded volume';

/** gzip (a .nii.gz) or a NIfTI-1/-2 sizeof_hdr (348 or 540) in either byte order (a .nii). */
export function looksLikeNifti(bytes: Uint8Array): boolean {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) return true;
  if (bytes.length < 4) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, 4);
  return [v.getInt32(0, true), v.getInt32(0, false)].some((n) => n === 348 || n === 540);
}

/** The image format a body starts with, from its magic bytes (for messages only). */
export function imageMagic(bytes: Uint8Array): string | undefined {
  const starts = (...b: number[]) => b.every((x, i) => bytes[i] === x);
  if (starts(0x89, 0x50, 0x4e, 0x47)) return 'PNG';
  if (starts(0xff, 0xd8, 0xff)) return 'JPEG';
  if (starts(0x52, 0x49, 0x46, 0x46) && bytes[8] === 0x57 && bytes[9] === 0x45) return 'WebP';
  if (starts(0x49, 0x49, 0x2a, 0) || starts(0x4d, 0x4d, 0, 0x2a)) return 'TIFF';
  if (starts(0x47, 0x49, 0x46)) return 'GIF';
  if (starts(0x42, 0x4d)) return 'BMP';
  return undefined;
}

/** 415 for a volume sent to a model trained on 2-D images. */
export function notAVolumeModel(): HttpError {
  return new HttpError(
    415,
    'uploaded volume: this model was not trained on volumes (its weights carry no volume metadata), so it cannot segment a NIfTI file; send a 2-D image (PNG, JPEG, WebP, TIFF) or serve weights trained on volumes',
  );
}

/** 415 for anything but a NIfTI sent to a model trained on volumes. */
export function notAVolume(bytes: Uint8Array): HttpError {
  const kind = imageMagic(bytes);
  return new HttpError(
    415,
    `${kind ? `uploaded ${kind} image` : 'upload is not a NIfTI file (neither gzip nor a NIfTI-1/-2 header)'}: this model was trained on volumes; send a NIfTI volume (.nii or .nii.gz, raw body with Content-Type application/gzip or application/octet-stream, or a multipart file in the field "volume")`,
  );
}

/**
 * Reads the header only (a .nii.gz: its first kilobyte inflated) and refuses, before any voxel is inflated, files
 * over `maxVoxels` voxels, 4-D files and anything the reader cannot take; all 422 with a one-line message.
 */
export function checkVolumeHeader(bytes: Uint8Array, maxVoxels: number): { dims: number[]; type: string } {
  let header;
  try {
    header = readNiftiHeader(bytes, VOLUME_SOURCE);
  } catch (e) {
    if (e instanceof UserError) throw new HttpError(422, e.message);
    throw e;
  }
  const { dims, volumes } = header;
  const total = voxelCount(dims) * volumes;
  const shape = volumes > 1 ? `${formatDims(dims)}×${volumes}` : formatDims(dims);
  if (total > maxVoxels)
    throw new HttpError(422, `${VOLUME_SOURCE}: ${shape} = ${total.toLocaleString('en-US')} voxels is more than this server's limit of ${maxVoxels.toLocaleString('en-US')} voxels`);
  if (volumes > 1) throw new HttpError(422, `${VOLUME_SOURCE}: a 4-D file (${shape}, ${volumes} volumes); send one 3-D volume per request`);
  return { dims: [...dims], type: header.type };
}

export interface VolumeTiming {
  queue: number;
  decode: number;
  inference: number;
  slicing: number;
  encode: number;
  total: number;
}

/** The JSON answer for a segmented volume. */
export function volumeJson(model: string, meta: VolumeModelMeta, s: VolumeSummary, nifti: Uint8Array, timing: VolumeTiming, warning?: string) {
  const ml = s.voxelMm3 / 1000;
  return {
    model,
    dims: s.dims,
    spacing_mm: s.spacing,
    voxel_volume_ml: ml,
    datatype: s.datatype,
    nifti_version: s.niftiVersion,
    axis: s.axis,
    slices: s.slices,
    classes: meta.classNames.map((name, k) => ({ name, value: meta.classValues[k]!, voxels: s.classVoxels[k]!, volume_ml: s.classVoxels[k]! * ml })),
    labels_nii_gz_base64: Buffer.from(nifti.buffer, nifti.byteOffset, nifti.byteLength).toString('base64'),
    timing_ms: timing,
    ...(warning ? { warning } : {}),
  };
}
