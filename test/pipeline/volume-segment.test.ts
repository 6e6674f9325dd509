import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resizeLinearCv2, resizeNearestCv2 } from '../../src/data/resize.ts';
import type { VolumeModelMeta } from '../../src/data/volume/model-meta.ts';
import { decodeNifti, readNifti } from '../../src/data/volume/nifti-read.ts';
import { encodeProbabilityNifti } from '../../src/data/volume/nifti-write.ts';
import { axisCodes, toCanonicalData } from '../../src/data/volume/orientation.ts';
import { qformAffine } from '../../src/data/volume/nifti-header.ts';
import { cutPlane, sliceCount, sliceOf, type SliceAxis } from '../../src/data/volume/slices.ts';
import { prepareCase } from '../../src/data/volume/prepare.ts';
import { UserError } from '../../src/errors.ts';
import { logitsToMask } from '../../src/pipeline/postprocess.ts';
import { Segmenter } from '../../src/pipeline/segmenter.ts';
import { resizeLinearFloat, segmentVolume, softmax } from '../../src/pipeline/volume.ts';
import { slicePlane } from '../../src/data/volume/slices.ts';
import { CT_META, volumeModel, writeAwkwardCt } from './volume-synthetic.ts';

const dir = mkdtempSync(join(tmpdir(), 'mobileutr-volume-'));
const ctPath = join(dir, 'ct.nii.gz');
writeAwkwardCt(ctPath);

describe('segmentVolume: the training preprocessing, slice by slice, back on the source grid', () => {
  const cases: [SliceAxis, 0 | 1][] = [
    ['axial', 0],
    ['coronal', 1],
    ['sagittal', 0],
  ];
  for (const [axis, context] of cases) {
    it(`${axis} slices, context ${context}: equals sliceOf + logits + argmax + nearest back, slice by slice`, async () => {
      const meta: VolumeModelMeta = { ...CT_META, axis, context };
      const model = await volumeModel(meta);
      const seg = await Segmenter.create(model, { threads: 1 });
      const volume = await readNifti(ctPath);
      const progress: number[] = [];
      const r = await segmentVolume(seg, model.options, volume, meta, { batch: 1, onProgress: (d) => progress.push(d) });

      // reference: the training code's own case preparation and slicing, one slice per run
      const p = await prepareCase({ id: 'ct', images: [ctPath] }, { intensity: meta.intensity });
      expect(r.canonical.dims).toEqual(p.dims);
      expect(r.image).toEqual(p.channels[0]);
      const total = sliceCount(p, axis);
      expect(r.slices).toBe(total);
      expect(progress).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      const [w, h] = slicePlane(p.dims, axis);
      for (const k of [0, Math.floor(total / 2), total - 1]) {
        const s = sliceOf(p, axis, k, { size: 32, context });
        const mask = logitsToMask(await seg.logits(s.image, 1), 3, 32 * 32);
        expect(cutPlane(r.classMap, p.dims, axis, k)).toEqual(resizeNearestCv2(mask, 32, 32, 1, w, h));
      }
      // labels in the source's voxel order are the class values of the canonical class map
      const back = toCanonicalData(r.labels, r.reorientation);
      expect(back.every((v, i) => v === meta.classValues[r.classMap[i]!])).toBe(true);
      expect(r.labels).toBeInstanceOf(Uint8Array);
      expect(new Set(r.classMap).size).toBeGreaterThan(1); // the random model does not answer one class everywhere
      await seg.release();
    });
  }

  it('batches give the labels of one slice per run (up to float noise on ties), and values above 255 give Int16Array', async () => {
    const meta: VolumeModelMeta = { ...CT_META, classValues: [0, 3, 300] };
    const model = await volumeModel(meta);
    const seg = await Segmenter.create(model, { threads: 1 });
    const volume = await readNifti(ctPath);
    const one = await segmentVolume(seg, model.options, volume, meta, { batch: 1 });
    const four = await segmentVolume(seg, model.options, volume, meta, { batch: 4 });
    const differ = one.classMap.filter((c, i) => c !== four.classMap[i]).length;
    expect(differ).toBeLessThanOrEqual(one.classMap.length * 1e-3);
    expect(four.labels).toBeInstanceOf(Int16Array);
    expect(new Set(four.labels)).toEqual(new Set([...new Set(four.classMap)].map((c) => meta.classValues[c])));
    expect(four.timing.inferenceMs).toBeGreaterThan(0);
    expect(four.timing.totalMs).toBeGreaterThanOrEqual(four.timing.inferenceMs);
    await seg.release();
  });

  it('probabilities: softmax at network size, class-major in source order; at plane size = network size they are the softmax itself', async () => {
    // a 32 × 32 plane on a 32 network: both resizes are the identity, so every voxel can be checked exactly
    const path = join(dir, 'ct32.nii.gz');
    writeAwkwardCt(path, [32, 32, 3]);
    const model = await volumeModel(CT_META);
    const seg = await Segmenter.create(model, { threads: 1 });
    const volume = await readNifti(path);
    const r = await segmentVolume(seg, model.options, volume, CT_META, { probabilities: true, batch: 2 });
    const n = volume.data.length;
    const probs = r.probabilities!;
    expect(probs.length).toBe(3 * n);
    const p = await prepareCase({ id: 'ct32', images: [path] }, { intensity: CT_META.intensity });
    const toSource = toCanonicalData(Int32Array.from({ length: n }, (_, i) => i), r.reorientation);
    for (let k = 0; k < 3; k++) {
      const expected = softmax(await seg.logits(sliceOf(p, 'axial', k, { size: 32 }).image, 1), 3, 1024);
      for (let c = 0; c < 3; c++)
        for (let i = 0; i < 1024; i++) expect(Math.abs(probs[c * n + toSource[k * 1024 + i]!]! - expected[c * 1024 + i]!)).toBeLessThan(1e-5);
    }
    // argmax of the probabilities is the label map here
    for (let v = 0; v < n; v++) {
      const best = [0, 1, 2].reduce((b, c) => (probs[c * n + v]! > probs[b * n + v]! ? c : b), 0);
      expect(CT_META.classValues[best]).toBe(r.labels[v]);
    }
    // the 4-D float32 NIfTI holds class c as volume c, on the source grid
    const file = encodeProbabilityNifti(probs, 3, volume.grid);
    const v1 = decodeNifti(file, 'prob.nii', { volumeIndex: 1 });
    expect(v1.grid).toEqual(volume.grid);
    expect(v1.datatype).toBe('float32');
    expect(v1.data).toEqual(probs.subarray(n, 2 * n));
    expect(() => decodeNifti(file, 'prob.nii')).toThrow(/4-D file .* 3 volumes/);
    await seg.release();
  });

  it('probabilities sum to 1 after resizing back to a plane of another size', async () => {
    const model = await volumeModel(CT_META);
    const seg = await Segmenter.create(model, { threads: 1 });
    const volume = await readNifti(ctPath);
    const r = await segmentVolume(seg, model.options, volume, CT_META, { probabilities: true });
    const n = volume.data.length;
    for (let v = 0; v < n; v++) expect(Math.abs(r.probabilities![v]! + r.probabilities![n + v]! + r.probabilities![2 * n + v]! - 1)).toBeLessThan(1e-5);
    await seg.release();
  });

  it('a model that does not fit the metadata, or channels on different grids, is a UserError', async () => {
    const model = await volumeModel(CT_META);
    const volume = await readNifti(ctPath);
    const runner = { logits: async () => new Float32Array(0) };
    await expect(segmentVolume(runner, model.options, volume, { ...CT_META, classValues: [0, 1] , classNames: ['a', 'b'] })).rejects.toThrow(/2 output classes|3 output classes/);
    await expect(segmentVolume(runner, model.options, volume, { ...CT_META, context: 1 })).rejects.toThrow(UserError);
    const other = await readNifti(join(dir, 'ct32.nii.gz'));
    await expect(segmentVolume(runner, { ...model.options, inChannels: 2 }, [volume, other], CT_META)).rejects.toThrow(/channel is 32×32×3 voxels/);
    // probabilities past 1 GiB are refused from the dims, before anything is allocated
    const huge = { ...volume, dims: [1024, 1024, 100] as typeof volume.dims };
    await expect(segmentVolume(runner, model.options, huge, CT_META, { probabilities: true })).rejects.toThrow(/104,857,600 voxels × 3 classes would take 1\.2 GiB .*predict without --prob/);
  });
});

describe('resizeLinearFloat', () => {
  it("follows cv2's linear geometry: within 1 of resizeLinearCv2 on 8-bit data, up and down", () => {
    const src = Uint8Array.from({ length: 13 * 9 }, (_, i) => (i * 37 + (i % 7) * 19) % 256);
    for (const [tw, th] of [
      [32, 32],
      [5, 4],
      [13, 9],
      [20, 7],
    ] as const) {
      const ours = resizeLinearFloat(Float32Array.from(src), 13, 9, tw, th);
      const cv2 = resizeLinearCv2(src, 13, 9, 1, tw, th);
      ours.forEach((v, i) => expect(Math.abs(v - cv2[i]!)).toBeLessThanOrEqual(1));
    }
  });
});

describe('the synthetic header', () => {
  it('is oblique, permuted and flipped (sform code 1 wins over a different qform, code 2)', async () => {
    const v = await readNifti(ctPath);
    expect([v.grid.qformCode, v.grid.sformCode]).toEqual([2, 1]);
    expect(axisCodes(v.affine)).toBe('ALI');
    expect(axisCodes(qformAffine(v.grid))).toBe('RAI');
  });
});
