/**
 * Segmenting a whole volume (CT, MRI) with a model trained on its slices, the way it was trained and the way
 * TransUNet's `test_single_volume` tests (DESIGN §10): the volume in canonical RAS+ order, the intensity preset of
 * the weights' metadata per volume, 8 bits over the clip range, each slice resized to the network with cv2's linear
 * arithmetic (with its neighbours as channels for 2.5-D models) — all through `sliceOf`, the training code — then
 * logits in batches, arg-max at network size, the class map resized back to the slice plane with cv2 nearest (the
 * order-0 zoom back), slices stacked, the volume put back in the source's voxel order and class k written as label
 * value `classValues[k]`.
 *
 * Probabilities (optional): softmax at network size, each class plane resized back with float bilinear on cv2's
 * pixel-centre grid (src = (dst + 0.5)·scale − 0.5, clamped at the borders; no 8-bit rounding), so they sum to 1 at
 * every voxel. Their arg-max can differ from the label map on edge voxels: the labels follow TransUNet (nearest).
 *
 * @example
 *   const seg = await Segmenter.create(model);
 *   const r = await segmentVolume(seg, model.options, await readVolume('ct.nii.gz'), meta);
 *   await writeLabelNifti('ct_pred.nii.gz', r.labels, ct.grid);
 */
import { UserError } from '../errors.ts';
import { resizeNearestCv2 } from '../data/resize.ts';
import { gridMismatch } from '../data/volume/check.ts';
import type { VolumeModelMeta } from '../data/volume/model-meta.ts';
import { fromCanonical, toCanonicalData, type Reorientation } from '../data/volume/orientation.ts';
import { labelValues } from '../data/volume/nifti-encode.ts';
import { caseFromVolumes } from '../data/volume/prepare.ts';
import { pastePlane, sliceChannels, sliceCount, sliceOf, slicePlane, type SliceAxis } from '../data/volume/slices.ts';
import { voxelCount, type Mat4, type Vec3, type Volume } from '../data/volume/volume.ts';
import type { ResolvedModelOptions } from '../models/model.ts';
import { logitsToMask } from './postprocess.ts';

/** What runs the network: `Segmenter` or anything with its `logits` (batch [n, inChannels, size, size] -> [n, classes, size, size]). */
export interface LogitsRunner {
  logits(batch: Float32Array, n: number): Promise<Float32Array>;
}

export type VolumeModelOptions = Pick<ResolvedModelOptions, 'size' | 'classes' | 'inChannels'>;

export interface SegmentVolumeOptions {
  /** Slices per network run (default 4). */
  batch?: number;
  /** Also compute per-class probabilities (float32, classes × voxels). */
  probabilities?: boolean;
  /** After each batch: slices done, slices in all. */
  onProgress?(done: number, total: number): void;
}

export interface VolumeSegmentation {
  /** Label value per voxel in the source's voxel order (Uint8Array, or Int16Array when a value is outside 0..255). */
  labels: Uint8Array | Int16Array;
  /** With `probabilities`: class-major [classes][voxels], each class in the source's voxel order (a 4-D NIfTI's layout). */
  probabilities?: Float32Array;
  /** Class index per voxel, canonical order (what scoring compares with canonical ground truth). */
  classMap: Uint8Array;
  /** The first input channel as the network saw it before resizing: 8 bits over the clip range, canonical order (for overlays). */
  image: Uint8Array;
  /** Canonical (RAS+) dims, spacing and affine of `classMap` and `image`. */
  canonical: { dims: Vec3; spacing: Vec3; affine: Mat4 };
  reorientation: Reorientation;
  axis: SliceAxis;
  /** Slices segmented (along `axis`). */
  slices: number;
  /** Whole call and network alone, in milliseconds. */
  timing: { totalMs: number; inferenceMs: number };
}

/** Probability volumes hold at most this many values (1 GiB of float32); more is a UserError naming the sizes. */
export const MAX_PROBABILITY_VALUES = 2 ** 28;


/**
 * Checks that a model fits a volume model's metadata: one output per class of `classValues`, and as many input
 * channels as `volumeChannels` volumes with the slice context give. A mismatch is a UserError naming `source`.
 */
export function checkVolumeModel(options: VolumeModelOptions, meta: VolumeModelMeta, source: string, volumeChannels = 1): void {
  const classes = meta.classValues.length;
  if (options.classes !== classes)
    throw new UserError(`${source}: the model has ${options.classes} output classes but its volume metadata lists ${classes} (${meta.classNames.join(', ')})`);
  const expected = sliceChannels(volumeChannels, meta.context);
  if (options.inChannels !== expected)
    throw new UserError(
      `${source}: the model takes ${options.inChannels} input channels, but ${volumeChannels} volume channel${volumeChannels > 1 ? 's' : ''} with slice context ${meta.context} give ${expected}`,
    );
  if (meta.classValues.some((v) => v < -32768 || v > 32767)) throw new UserError(`${source}: label values must fit 16 bits (-32768..32767) to be written as NIfTI`);
}

/**
 * Segments a volume (or the channels of one case, same grid) slice by slice as the volume model was trained
 * (its `VolumeModelMeta`: intensity, axis, slice context), and returns labels on the source grid.
 *
 * @example
 * ```ts
 * const meta = volumeMetaFrom((await readSafetensorsFile('ct.safetensors')).metadata, 'ct.safetensors')!;
 * const { labels } = await segmentVolume(segmenter, model.options, await readVolume('case.nii.gz'), meta);
 * ```
 */
export async function segmentVolume(
  runner: LogitsRunner,
  options: VolumeModelOptions,
  volume: Volume | readonly Volume[],
  meta: VolumeModelMeta,
  o: SegmentVolumeOptions = {},
): Promise<VolumeSegmentation> {
  const start = performance.now();
  const volumes: readonly Volume[] = Array.isArray(volume) ? volume : [volume as Volume];
  const first = volumes[0];
  if (!first) throw new UserError('segmentVolume: no volume given');
  checkVolumeModel(options, meta, first.source, volumes.length);
  volumes.slice(1).forEach((v) => {
    const problem = gridMismatch(v, first, 'channel');
    if (problem) throw new UserError(`${v.source}: ${problem}`);
  });
  const batch = o.batch ?? 4;
  if (!(Number.isInteger(batch) && batch >= 1)) throw new UserError(`batch must be an integer >= 1, got ${batch}`);
  const { size, classes, inChannels } = options;
  const n = voxelCount(first.dims);
  if (o.probabilities && n * classes > MAX_PROBABILITY_VALUES)
    throw new UserError(
      `${first.source}: probabilities of ${n.toLocaleString('en-US')} voxels × ${classes} classes would take ${((n * classes * 4) / 2 ** 30).toFixed(1)} GiB (limit ${MAX_PROBABILITY_VALUES / 2 ** 28} GiB); predict without --prob`,
    );

  // the training preprocessing: canonical, intensity map per volume, 8 bits
  const { prepared, reorientation, affine } = caseFromVolumes(first.source, volumes, meta.intensity);
  const { dims, spacing, channels } = prepared;

  const axis = meta.axis;
  const total = sliceCount(prepared, axis);
  const [w, h] = slicePlane(dims, axis);
  const plane = size * size;
  const classMap = new Uint8Array(n);
  // canonical voxel -> source voxel, to write probabilities straight into the source order
  const toSource = o.probabilities ? toCanonicalData(iota(n), reorientation) : undefined;
  const probabilities = o.probabilities ? new Float32Array(n * classes) : undefined;
  const input = new Float32Array(batch * inChannels * plane);
  let inferenceMs = 0;
  for (let k0 = 0; k0 < total; k0 += batch) {
    const count = Math.min(batch, total - k0);
    for (let b = 0; b < count; b++) input.set(sliceOf(prepared, axis, k0 + b, { size, context: meta.context }).image, b * inChannels * plane);
    const t = performance.now();
    const logits = await runner.logits(count === batch ? input : input.subarray(0, count * inChannels * plane), count);
    inferenceMs += performance.now() - t;
    for (let b = 0; b < count; b++) {
      const one = logits.subarray(b * classes * plane, (b + 1) * classes * plane);
      const mask = resizeNearestCv2(logitsToMask(one, classes, plane), size, size, 1, w, h);
      pastePlane(classMap, dims, axis, k0 + b, mask);
      if (probabilities) pasteProbabilities(probabilities, toSource!, softmax(one, classes, plane), classes, size, dims, axis, k0 + b);
    }
    o.onProgress?.(k0 + count, total);
  }

  const labels = fromCanonical(labelValues(classMap, meta.classValues), reorientation);
  return {
    labels,
    probabilities,
    classMap,
    image: channels[0]!,
    canonical: { dims, spacing, affine },
    reorientation,
    axis,
    slices: total,
    timing: { totalMs: performance.now() - start, inferenceMs },
  };
}

function iota(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}


/** Softmax over classes of logits [classes, plane]. */
export function softmax(logits: Float32Array, classes: number, plane: number): Float32Array {
  const out = new Float32Array(classes * plane);
  for (let i = 0; i < plane; i++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[c * plane + i]!);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += out[c * plane + i] = Math.exp(logits[c * plane + i]! - max);
    for (let c = 0; c < classes; c++) out[c * plane + i]! /= sum;
  }
  return out;
}

/** Bilinear weights on cv2's pixel-centre grid, in float: source index and fraction per output position. */
function linearAxis(src: number, dst: number): { at: Int32Array; frac: Float32Array } {
  const scale = src / dst;
  const at = new Int32Array(dst);
  const frac = new Float32Array(dst);
  for (let d = 0; d < dst; d++) {
    const f = (d + 0.5) * scale - 0.5;
    let s = Math.floor(f);
    let t = f - s;
    if (s < 0) (s = 0), (t = 0);
    if (s >= src - 1) (s = src - 1), (t = 0);
    at[d] = s;
    frac[d] = t;
  }
  return { at, frac };
}

/** Float bilinear resize of one plane (cv2 INTER_LINEAR's geometry without its 8-bit fixed point). */
export function resizeLinearFloat(src: Float32Array, width: number, height: number, toWidth: number, toHeight: number): Float32Array {
  const x = linearAxis(width, toWidth);
  const y = linearAxis(height, toHeight);
  const out = new Float32Array(toWidth * toHeight);
  for (let r = 0; r < toHeight; r++) {
    const r0 = y.at[r]! * width;
    const r1 = Math.min(y.at[r]! + 1, height - 1) * width;
    const b = y.frac[r]!;
    for (let c = 0; c < toWidth; c++) {
      const c0 = x.at[c]!;
      const c1 = Math.min(c0 + 1, width - 1);
      const a = x.frac[c]!;
      const top = src[r0 + c0]! + (src[r0 + c1]! - src[r0 + c0]!) * a;
      const bottom = src[r1 + c0]! + (src[r1 + c1]! - src[r1 + c0]!) * a;
      out[r * toWidth + c] = top + (bottom - top) * b;
    }
  }
  return out;
}

/** Resizes each class plane of one slice's probabilities back to the slice plane and stores it at the source voxels. */
function pasteProbabilities(out: Float32Array, toSource: Int32Array, probs: Float32Array, classes: number, size: number, dims: Vec3, axis: SliceAxis, k: number): void {
  const [nx, ny] = dims;
  const [w, h] = slicePlane(dims, axis);
  const n = toSource.length;
  const index =
    axis === 'axial' ? (x: number, y: number) => x + nx * (y + ny * k) : axis === 'coronal' ? (x: number, z: number) => x + nx * (k + ny * z) : (y: number, z: number) => k + nx * (y + ny * z);
  for (let c = 0; c < classes; c++) {
    const p = resizeLinearFloat(probs.subarray(c * size * size, (c + 1) * size * size), size, size, w, h);
    const base = c * n;
    for (let v = 0; v < h; v++) for (let u = 0; u < w; u++) out[base + toSource[index(u, v)]!] = p[v * w + u]!;
  }
}
