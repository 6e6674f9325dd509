// Inputs of the volume tests of the browser app: a small synthetic CT on an oblique, permuted, left-handed grid
// (so that reorientation matters), the broken files the page must refuse with one message, a small model that
// carries the volume metadata in its ONNX metadata_props, and the Node reference prediction of that model.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import onnxProto from 'onnx-proto';
import { resizeNearestCv2 } from '../../src/data/resize.ts';
import { decodeNifti } from '../../src/data/volume/nifti-read.ts';
import type { VolumeModelMeta } from '../../src/data/volume/model-meta.ts';
import { fromCanonical, reorientation } from '../../src/data/volume/orientation.ts';
import { sliceOf } from '../../src/data/volume/slices.ts';
import { prepareCase } from '../../src/data/volume/prepare.ts';
import { applyAffine, type Mat4, type Vec3 } from '../../src/data/volume/volume.ts';
import { createModel, type SegmentationModel } from '../../src/models/model.ts';
import { Segmenter } from '../../src/pipeline/segmenter.ts';
import { fill, writeSyntheticNifti } from '../data/volume/synthetic.ts';

const { onnx } = onnxProto;

/** Source voxel dims: i runs towards the patient's left, j towards superior, k towards posterior (then rotated). */
export const CT_DIMS: Vec3 = [40, 14, 34];
const SPACING: Vec3 = [0.8, 2.5, 1.2];
const TILT = (12 * Math.PI) / 180;

/** The oblique grid: i -> L, j -> S, k -> P, turned 12° about S; det < 0 (qfac -1); origin off centre. */
export function ctAffine(): Mat4 {
  const c = Math.cos(TILT);
  const s = Math.sin(TILT);
  const rot = (v: Vec3): Vec3 => [c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]];
  const cols: Vec3[] = [rot([-SPACING[0], 0, 0]), [0, 0, SPACING[1]], rot([0, -SPACING[2], 0])];
  const origin: Vec3 = [14.5, 22, -17];
  return [0, 1, 2].map((r) => [cols[0]![r]!, cols[1]![r]!, cols[2]![r]!, origin[r]!]).concat([[0, 0, 0, 1]]);
}

/** World centre of the bright sphere: right of and anterior to the centre of the grid. */
export function sphereCentre(): Vec3 {
  const a = ctAffine();
  const mid = applyAffine(a, CT_DIMS.map((d) => (d - 1) / 2));
  return [mid[0] + 7, mid[1] + 8, mid[2]];
}

/** HU: air outside an elliptic body, soft tissue (40 ± texture) inside, a 300 HU sphere of radius 6 mm. */
export function ctVoxels(): Int16Array {
  const a = ctAffine();
  const mid = applyAffine(a, CT_DIMS.map((d) => (d - 1) / 2));
  const sc = sphereCentre();
  return fill(Int16Array, CT_DIMS, (i, j, k) => {
    const [x, y, z] = applyAffine(a, [i, j, k]);
    if (((x - mid[0]) / 15) ** 2 + ((y - mid[1]) / 18) ** 2 > 1) return -1000;
    if (Math.hypot(x - sc[0], y - sc[1], z - sc[2]) < 6) return 300;
    return 40 + Math.round(25 * Math.sin(x / 3) * Math.cos(y / 4) + 10 * Math.sin(z));
  });
}

/** Writes the CT as .nii.gz (and returns its bytes). */
export function writeCt(path: string): Buffer {
  writeSyntheticNifti(path, { dims: CT_DIMS, affine: ctAffine() }, ctVoxels());
  return readFileSync(path);
}

/** An uncompressed int16 NIfTI header + voxels as bytes, with `patch` applied to the header. */
function niftiBytes(dir: string, dims: Vec3, data: Int16Array, patch: (v: DataView) => void = () => {}): Buffer {
  const path = join(dir, `tmp-${Math.random().toString(36).slice(2)}.nii`);
  writeSyntheticNifti(path, { dims, spacing: [1, 1, 1] }, data);
  const bytes = readFileSync(path);
  patch(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return bytes;
}

/** Files the page must refuse, each with the message it must show. */
export function brokenFiles(dir: string, ctGz: Buffer): { name: string; bytes: Buffer; message: RegExp }[] {
  const small = fill(Int16Array, [6, 5, 4], (i, j, k) => i + j + k);
  // 4-D: dim[0] = 4, dim[4] = 3, and three volumes of data
  const fourD = Buffer.concat([
    niftiBytes(dir, [6, 5, 4], small, (v) => {
      v.setInt16(40, 4, true);
      v.setInt16(48, 3, true);
    }),
    Buffer.alloc(2 * small.byteLength),
  ]);
  const rgb = niftiBytes(dir, [6, 5, 4], small, (v) => {
    v.setInt16(70, 128, true); // RGB24
    v.setInt16(72, 24, true);
  });
  // a gzip bomb: a 6×5×4 int16 header followed by 64 MB of zeros (64 kB compressed)
  const header = niftiBytes(dir, [6, 5, 4], small).subarray(0, 352);
  const bomb = gzipSync(Buffer.concat([header, Buffer.alloc(64 << 20)]), { level: 9 });
  return [
    { name: 'cut.nii.gz', bytes: ctGz.subarray(0, Math.floor(ctGz.length * 0.6)), message: /cut\.nii\.gz: the gzip stream is truncated/ },
    { name: 'short.nii', bytes: niftiBytes(dir, [6, 5, 4], small).subarray(0, 352 + 100), message: /short\.nii: the file has 452 bytes.*truncated file/ },
    { name: 'fmri.nii.gz', bytes: gzipSync(fourD), message: /fmri\.nii\.gz: a 4-D file \(6×5×4×3, 3 volumes\); the page opens 3-D volumes only/ },
    { name: 'rgb.nii', bytes: rgb, message: /rgb\.nii: NIfTI datatype RGB24 is not supported/ },
    { name: 'bomb.nii.gz', bytes: bomb, message: /bomb\.nii\.gz: the data inflates to more than the 592 bytes the header declares; stopped there/ },
  ];
}

export const MODEL_SIZE = 32;
export const META: VolumeModelMeta = {
  intensity: { kind: 'ct' },
  axis: 'axial',
  context: 1,
  classValues: [0, 3, 7],
  classNames: ['background', 'liver', 'lesion'],
};

/** The model's ONNX with the `volume` metadata entry that `mobileutr export` is to write. */
export function onnxWithVolumeMeta(model: SegmentationModel, meta: VolumeModelMeta | undefined): Uint8Array {
  const proto = onnx.ModelProto.decode(model.toOnnx());
  if (meta) proto.metadataProps.push(onnx.StringStringEntryProto.create({ key: 'volume', value: JSON.stringify(meta) }));
  return onnx.ModelProto.encode(proto).finish();
}

/** The reference: slices as slices.ts prepares them for training, logits from onnxruntime-node, argmax, nearest back. */
export interface Reference {
  /** Label values in the source voxel order. */
  labels: Uint8Array;
  /** 1 where the best two logits are within `tie` (either class is a fair answer). */
  ties: Uint8Array;
}

export async function referencePrediction(path: string, model: SegmentationModel, meta: VolumeModelMeta, tie = 1e-4): Promise<Reference> {
  const source = decodeNifti(readFileSync(path), path);
  const p = await prepareCase({ id: 'ct', images: [path] }, { intensity: meta.intensity });
  const seg = await Segmenter.create(model);
  const s = model.options.size!;
  const classes = model.options.classes!;
  const [nx, ny, nz] = p.dims;
  const labels = new Uint8Array(nx * ny * nz);
  const ties = new Uint8Array(nx * ny * nz);
  try {
    for (let k = 0; k < nz; k++) {
      const logits = await seg.logits(sliceOf(p, 'axial', k, { size: s, context: meta.context }).image, 1);
      const best = new Uint8Array(s * s);
      const tied = new Uint8Array(s * s);
      for (let i = 0; i < s * s; i++) {
        const v = Array.from({ length: classes }, (_, c) => logits[c * s * s + i]!);
        const order = v.map((x, c) => [x, c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
        best[i] = order[0]![1];
        tied[i] = order[0]![0] - order[1]![0] < tie ? 1 : 0;
      }
      labels.set(resizeNearestCv2(best, s, s, 1, nx, ny), k * nx * ny);
      ties.set(resizeNearestCv2(tied, s, s, 1, nx, ny), k * nx * ny);
    }
  } finally {
    await seg.release();
  }
  const r = reorientation(source.dims, source.affine);
  return { labels: fromCanonical(labels, r).map((c) => meta.classValues[c]!), ties: fromCanonical(ties, r) };
}

/**
 * A small model (size 32, 3 input channels for context 1, 3 classes) whose head biases are shifted so that each
 * class wins somewhere on the CT: an untrained network would otherwise give one class almost everywhere.
 */
export async function balancedModel(path: string, meta: VolumeModelMeta): Promise<SegmentationModel> {
  const model = createModel('mobileutr', { size: MODEL_SIZE, inChannels: 3, classes: meta.classValues.length, seed: 5 });
  const p = await prepareCase({ id: 'ct', images: [path] }, { intensity: meta.intensity });
  const seg = await Segmenter.create(model);
  const plane = MODEL_SIZE * MODEL_SIZE;
  const perClass: number[][] = meta.classValues.map(() => []);
  try {
    for (let k = 0; k < p.dims[2]; k++) {
      const logits = await seg.logits(sliceOf(p, 'axial', k, { size: MODEL_SIZE, context: meta.context }).image, 1);
      perClass.forEach((list, c) => {
        for (let i = 0; i < plane; i += 3) list.push(logits[c * plane + i]!);
      });
    }
  } finally {
    await seg.release();
  }
  const bias = model.weights.get('head.bias')!;
  perClass.forEach((list, c) => {
    list.sort((a, b) => a - b);
    bias[c]! -= list[Math.floor(list.length * (c === 0 ? 0.3 : 0.5))]!;
  });
  return model;
}
