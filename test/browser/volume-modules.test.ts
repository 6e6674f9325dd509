// The volume modules of the browser app, run on Node (which has the same DecompressionStream/CompressionStream):
// the page's NIfTI reader against Node's, its refusals, its slice inputs against the training slices, the label
// NIfTI round trip, the model's volume metadata, and a whole-volume prediction against onnxruntime-node's reference.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeNifti } from '../../src/data/volume/nifti-read.ts';
import { SLICE_AXES, sliceOf } from '../../src/data/volume/slices.ts';
import { prepareCase } from '../../src/data/volume/prepare.ts';
import { toCanonical } from '../../src/data/volume/orientation.ts';
import type { Volume } from '../../src/data/volume/volume.ts';
import { NodeSession } from '../../src/runtime/session.ts';
import { readNiftiBytes } from '../../src/web/nifti-file.ts';
import { encodeLabelNifti, labelNiftiGz, labelValues } from '../../src/web/nifti-label.ts';
import { modelInfo, readOnnxSummary } from '../../src/web/onnx-info.ts';
import { volumeMetaOf } from '../../src/web/volume-meta.ts';
import { classTable, VolumeSegmenter } from '../../src/web/volume-segment.ts';
import { cutPlane, pastePlane, volumeSliceInput } from '../../src/web/volume-slices.ts';
import { autoWindow, looksLikeCt, windowPlane } from '../../src/web/window-level.ts';
import { fromCanonical } from '../../src/data/volume/orientation.ts';
import { quantize, intensityMap } from '../../src/data/volume/intensity.ts';
import { balancedModel, brokenFiles, CT_DIMS, META, onnxWithVolumeMeta, referencePrediction, writeCt } from './volume-fixtures.ts';

let dir = '';
let ctPath = '';
let ctGz: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mobileutr-webvol-'));
  ctPath = join(dir, 'ct.nii.gz');
  ctGz = writeCt(ctPath);
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function sameVolume(a: Volume, b: Volume): void {
  expect(a.dims).toEqual(b.dims);
  expect(a.spacing).toEqual(b.spacing);
  expect(a.affine).toEqual(b.affine);
  expect(a.grid).toEqual(b.grid);
  expect(a.datatype).toBe(b.datatype);
  expect(a.data).toEqual(b.data);
}

describe('web/src/nifti-file (the page reads NIfTI as Node does)', () => {
  it('reads .nii.gz and .nii to the same volume as src/data/volume/nifti-read.ts', async () => {
    const node = decodeNifti(ctGz, 'ct.nii.gz');
    sameVolume(await readNiftiBytes(ctGz, 'ct.nii.gz'), node);
    sameVolume(await readNiftiBytes(gunzipSync(ctGz), 'ct.nii'), node);
    expect(node.dims).toEqual(CT_DIMS);
  });

  it('refuses truncated, 4-D, RGB and bomb files with one line each, and files over the voxel limit from the header', async () => {
    for (const f of brokenFiles(dir, ctGz)) await expect(readNiftiBytes(f.bytes, f.name), f.name).rejects.toThrow(f.message);
    await expect(readNiftiBytes(ctGz, 'ct.nii.gz', 1000)).rejects.toThrow(/40×14×34 = 19,040 voxels is more than the page's limit of 1,000/);
    await expect(readNiftiBytes(new TextEncoder().encode('hello'), 'x.nii')).rejects.toThrow(/x\.nii: too short for a NIfTI header/);
  });
});

describe('web/src/volume-slices (network inputs as training prepares them)', () => {
  it('gives exactly the floats of sliceOf (src/data/volume/slices.ts) along every axis, with and without context', async () => {
    for (const intensity of [{ kind: 'ct' } as const, { kind: 'mri' } as const]) {
      const p = await prepareCase({ id: 'ct', images: [ctPath] }, { intensity });
      const canonical = toCanonical(decodeNifti(ctGz, 'ct')).volume;
      const map = intensityMap(canonical.data, intensity);
      expect(map).toEqual(p.maps[0]);
      const q = quantize(canonical.data, map);
      for (const axis of SLICE_AXES)
        for (const context of [0, 1])
          for (const k of [0, 3, p.dims[{ sagittal: 0, coronal: 1, axial: 2 }[axis]] - 1]) {
            const mine = volumeSliceInput(q, map, canonical.dims, axis, k, 24, context);
            expect(mine, `${intensity.kind} ${axis} ${k} ±${context}`).toEqual(sliceOf(p, axis, k, { size: 24, context }).image);
          }
    }
  });

  it('putPlane is the inverse of cutPlane', () => {
    const dims = [5, 4, 3] as [number, number, number];
    const data = new Uint8Array(60).map((_, i) => i);
    for (const axis of SLICE_AXES) {
      const copy = new Uint8Array(60);
      const n = { sagittal: 5, coronal: 4, axial: 3 }[axis];
      for (let k = 0; k < n; k++) pastePlane(copy, dims, axis, k, cutPlane(data, dims, axis, k));
      expect(copy).toEqual(data);
    }
  });
});

describe('web/src/window-level', () => {
  it('recognises CT, windows to 8 bits and finds an MRI window from percentiles', () => {
    const ct = decodeNifti(ctGz, 'ct').data;
    expect(looksLikeCt(ct)).toBe(true);
    expect(looksLikeCt(ct.map((v) => v + 1000))).toBe(false);
    expect(Array.from(windowPlane(new Float32Array([-200, -160, 41, 240, 500]), { level: 40, width: 400 }))).toEqual([0, 0, 128, 255, 255]);
    const w = autoWindow(new Float32Array(1001).map((_, i) => i));
    expect(w.level).toBeCloseTo(500, 6);
    expect(w.width).toBeCloseTo(990, 6);
  });
});

describe('web/src/nifti-label (the downloaded label NIfTI)', () => {
  it('keeps the source grid exactly (dims, pixdim, qform/sform) and the label values, gzip or not', async () => {
    const src = decodeNifti(ctGz, 'ct');
    const classes = new Uint8Array(src.data.length).map((_, i) => i % 3);
    for (const values of [[0, 3, 7], [0, 300, -2]]) {
      const labels = labelValues(classes, values);
      expect(labels).toBeInstanceOf(values[1]! > 255 ? Int16Array : Uint8Array);
      const raw = decodeNifti(encodeLabelNifti(labels, src.grid), 'labels.nii');
      const gz = decodeNifti(new Uint8Array(await (await labelNiftiGz(labels, src.grid)).arrayBuffer()), 'labels.nii.gz');
      for (const back of [raw, gz]) {
        expect(back.grid).toEqual(src.grid);
        expect(back.affine).toEqual(src.affine);
        expect(Array.from(back.data)).toEqual(Array.from(classes, (c) => values[c]!));
      }
    }
  });
});

describe('web/src/volume-meta (the model carries its volume preprocessing)', () => {
  it('reads the `volume` metadata_props entry, says when it is unusable, and is absent for 2-D models', async () => {
    const { createModel } = await import('../../src/models/model.ts');
    const model = createModel('mobileutr', { size: 32, inChannels: 3, classes: 3 });
    expect(volumeMetaOf(readOnnxSummary(onnxWithVolumeMeta(model, META)).metadata)).toEqual({ meta: META });
    expect(volumeMetaOf(readOnnxSummary(model.toOnnx()).metadata)).toEqual({});
    expect(volumeMetaOf({ volume: '{' })).toEqual({ problem: 'not JSON' });
    expect(volumeMetaOf({ volume: JSON.stringify({ ...META, axis: 'oblique' }) })).toEqual({ problem: 'axis' });
    expect(volumeMetaOf({ volume: JSON.stringify({ ...META, classNames: ['a'] }) })).toEqual({ problem: 'classNames' });
    expect(classTable(undefined, 3)).toEqual({ values: [0, 1, 2], names: ['background', 'class 1', 'class 2'] });
    expect(classTable(undefined, 1)).toEqual({ values: [0, 1], names: ['background', 'class 1'] });
  });
});

describe('web/src/volume-segment (whole volume, as the page runs it)', () => {
  it('gives the labels of the Node reference (slices.ts + onnxruntime-node) on onnxruntime-node', async () => {
    const model = await balancedModel(ctPath, META);
    const bytes = onnxWithVolumeMeta(model, META);
    const info = modelInfo(bytes);
    const session = await NodeSession.create(bytes);
    try {
      const source = await readNiftiBytes(ctGz, 'ct.nii.gz');
      const { volume, reorientation } = toCanonical(source);
      const seg = new VolumeSegmenter(session, info, volume, { kind: 'volume', intensity: META.intensity, context: META.context }, 'axial', classTable(META, info.classes));
      for (let k = 0; k < seg.slices; k++) await seg.segmentSlice(k);
      expect(seg.complete).toBe(true);
      const labels = labelValues(fromCanonical(seg.labels, reorientation), META.classValues);
      const ref = await referencePrediction(ctPath, model, META);
      expect(Array.from(labels)).toEqual(Array.from(ref.labels));
      const present = new Set(labels);
      expect(present.size, 'every class wins somewhere (the model is balanced)').toBe(3);
    } finally {
      await session.release();
    }
  });

  it('refuses a model whose channels or classes do not fit the slices, with the reason', async () => {
    const { createModel } = await import('../../src/models/model.ts');
    const info = modelInfo(createModel('mobileutr', { size: 32, inChannels: 1, classes: 2 }).toOnnx());
    const vol = toCanonical(decodeNifti(ctGz, 'ct')).volume;
    const fake = { run: async () => ({}), release: async () => {} } as unknown as NodeSession;
    expect(() => new VolumeSegmenter(fake, info, vol, { kind: 'volume', intensity: { kind: 'ct' }, context: 1 }, 'axial', classTable(undefined, 2))).toThrow(
      /slice context ±1 gives 3 input channels; the model takes 1/,
    );
    expect(() => new VolumeSegmenter(fake, info, vol, { kind: 'volume', intensity: { kind: 'ct' }, context: 0 }, 'axial', classTable(META, 2))).toThrow(
      /metadata names 3 classes but the model outputs 2/,
    );
  });
});
