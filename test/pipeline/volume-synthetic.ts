/**
 * Test helpers for whole-volume prediction: a small CT-like NIfTI-1 whose header is deliberately awkward (sform
 * oblique and flipped with code 1, a different qform with code 2, qfac -1, non-unit pixdim), a tiny volume model
 * saved with volume metadata, and the header fields a label map must copy, as raw bytes.
 */
import { writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { VolumeModelMeta } from '../../src/data/volume/model-meta.ts';
import { volumeMetadata } from '../../src/data/volume/model-meta.ts';
import { encodeLabelNifti } from '../../src/data/volume/nifti-write.ts';
import type { NiftiGrid, Vec3 } from '../../src/data/volume/volume.ts';
import { createModel, type SegmentationModel } from '../../src/models/model.ts';
import { saveWeights } from '../../src/models/weights.ts';
import { Segmenter } from '../../src/pipeline/segmenter.ts';

const f = Math.fround;

/**
 * sform (code 1) = Rx(20°) · Rz(90°) · diag(0.8, 1.1, -2.5) + offset: oblique, voxel axes permuted and flipped
 * ('ALI'); qform (code 2): a different grid, 30° about x with qfac -1 ('RAI').
 */
export function awkwardGrid(dims: Vec3): NiftiGrid {
  const c = Math.cos((20 * Math.PI) / 180);
  const s = Math.sin((20 * Math.PI) / 180);
  const scale = [0.8, 1.1, -2.5];
  const rot = [
    [0, -1, 0],
    [c, 0, -s],
    [s, 0, c],
  ];
  const offset = [12.5, -34.25, 56];
  return {
    version: 1,
    dims: [...dims],
    pixdim: [-1, 0.8, 1.1, 2.5, 0, 0, 0, 0].map(f),
    qformCode: 2,
    sformCode: 1,
    quatern: [f(Math.sin(Math.PI / 12)), 0, 0], // 30° about x
    qoffset: [10.5, -20.25, 30].map(f) as Vec3,
    srow: rot.map((row, r) => [...row.map((v, k) => f(v * scale[k]!)), f(offset[r]!)]),
    xyztUnits: 2,
  };
}

/** A CT-like int16 volume (HU -300..500: background, a body, two blobs) on {@link awkwardGrid}, written gzip'd. */
export function writeAwkwardCt(path: string, dims: Vec3 = [23, 19, 7]): { grid: NiftiGrid; data: Int16Array } {
  const [nx, ny, nz] = dims;
  const data = new Int16Array(nx * ny * nz);
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        const body = (i - nx / 2) ** 2 / (nx * nx * 0.16) + (j - ny / 2) ** 2 / (ny * ny * 0.16) < 1;
        const blob = (i - nx / 3) ** 2 + (j - ny / 3) ** 2 + (k - nz / 2) ** 2 < 10;
        const blob2 = (i - (2 * nx) / 3) ** 2 + (j - (2 * ny) / 3) ** 2 < 8 && k > 1;
        data[i + nx * (j + ny * k)] = blob ? 450 : blob2 ? 180 : body ? 40 + ((i * 7 + j * 3 + k * 11) % 60) : -300;
      }
  const grid = awkwardGrid(dims);
  writeFileSync(path, gzipSync(encodeLabelNifti(data, grid, 'awkward synthetic CT')));
  return { grid, data };
}

export const CT_META: VolumeModelMeta = {
  intensity: { kind: 'ct' },
  axis: 'axial',
  context: 0,
  classValues: [0, 3, 7],
  classNames: ['background', 'organ a', 'organ b'],
};

/**
 * A small MobileUtr for `meta` (1 channel, or 3 with context 1), saved with its volume metadata when `path` is
 * given. A freshly initialised network answers almost the same logits everywhere (per-pixel spread ~5e-4), hence
 * one class for the whole volume; its head is rescaled (logit_c -> 1000 · (logit_c - mean_c) on a ramp image) so that
 * the class depends on the input and tests see several classes.
 */
export async function volumeModel(meta: VolumeModelMeta, size = 32, seed = 7, path?: string): Promise<SegmentationModel> {
  const classes = meta.classValues.length;
  const inChannels = meta.context ? 3 : 1;
  const model = createModel('mobileutr', { size, inChannels, classes, seed });
  const probe = await Segmenter.create(model, { threads: 1 });
  const plane = size * size;
  const logits = await probe.logits(Float32Array.from({ length: inChannels * plane }, (_, i) => (i % plane) / plane), 1);
  await probe.release();
  const weight = model.weights.get('head.weight')!;
  const bias = model.weights.get('head.bias')!;
  const gain = 1000;
  for (let c = 0; c < classes; c++) {
    let mean = 0;
    for (let i = 0; i < plane; i++) mean += logits[c * plane + i]! / plane;
    bias[c] = gain * (bias[c]! - mean);
  }
  for (let i = 0; i < weight.length; i++) weight[i]! *= gain;
  if (path) await saveWeights(model, path, volumeMetadata(meta));
  return model;
}

/**
 * The NIfTI-1 header bytes a label map must copy from its source: dim[0..3], pixdim[0..7], qform/sform codes,
 * quatern_b..qoffset_z, srow_x..srow_z (offsets from the NIfTI-1 standard).
 */
export function geometryBytes(file: Uint8Array): Record<string, string> {
  const h = file[0] === 0x1f && file[1] === 0x8b ? gunzipSync(file).subarray(0, 348) : file.subarray(0, 348);
  const hex = (a: number, b: number) => Buffer.from(h.subarray(a, b)).toString('hex');
  return {
    dim0to3: hex(40, 48),
    pixdim: hex(76, 108),
    xyztUnits: hex(123, 124),
    qformSformCodes: hex(252, 256),
    quaternQoffset: hex(256, 280),
    srow: hex(280, 328),
  };
}
