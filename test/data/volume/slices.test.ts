// Training slices from volumes: intensity presets, canonical orientation, axes, 2.5-D context, cv2 resizing, class
// indices from dataset.json, a split by case, and a streaming loader held to its memory budget.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.ts';
import { resizeLinearCv2, resizeNearestCv2 } from '../../../src/data/resize.ts';
import { scanVolumeDataset, type VolumeDataset } from '../../../src/data/volume/dataset.ts';
import { parseIntensity, percentileSorted } from '../../../src/data/volume/intensity.ts';
import { SliceLoader, splitCases } from '../../../src/data/volume/loader.ts';
import { cutPlane, sliceCount, sliceOf } from '../../../src/data/volume/slices.ts';
import { prepareCase } from '../../../src/data/volume/prepare.ts';
import type { Vec3 } from '../../../src/data/volume/volume.ts';
import { Rng } from '../../../src/util/rng.ts';
import { datasetPath, describeWithDataset } from '../../support/datasets.ts';
import { fill, writeSyntheticNifti } from './synthetic.ts';

const DIMS: Vec3 = [8, 8, 5];
const value = (i: number, j: number, k: number) => i + 10 * j + 100 * k; // 0..474
/** A window where code q is value q: lo 0, hi 255. */
const IDENTITY = parseIntensity('127.5,255');

let tmp: string;
const nifti = (name: string, data: Int16Array | Uint8Array | Float32Array, g: Parameters<typeof writeSyntheticNifti>[1] = { dims: DIMS }) => {
  const path = join(tmp, name);
  writeSyntheticNifti(path, g, data);
  return path;
};

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'mobileutr-slices-'));
});

describe('intensity presets', () => {
  it('parses ct, mri and windows, and names a bad one', () => {
    expect(parseIntensity('ct')).toEqual({ kind: 'ct' });
    expect(parseIntensity('MRI')).toEqual({ kind: 'mri' });
    expect(parseIntensity('40,400')).toEqual({ kind: 'window', level: 40, width: 400 });
    expect(parseIntensity('window -600,1500')).toEqual({ kind: 'window', level: -600, width: 1500 });
    expect(() => parseIntensity('40')).toThrow(UserError);
    expect(() => parseIntensity('40,0')).toThrow(/width > 0/);
  });

  it('ct clips HU to [-125, 275] and scales to [0, 1]', async () => {
    const hu = fill(Int16Array, DIMS, (i, j, k) => -1000 + 30 * (i + 8 * j) + k);
    const p = await prepareCase({ id: 'ct', images: [nifti('ct.nii.gz', hu)] }, { intensity: { kind: 'ct' } });
    const s = sliceOf(p, 'axial', 2, { size: 8 });
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++) {
        const v = -1000 + 30 * (x + 8 * y) + 2;
        expect(s.image[y * 8 + x]).toBeCloseTo(Math.min(Math.max((v + 125) / 400, 0), 1), 2); // 8-bit steps: 1/255
      }
    expect(Math.min(...s.image)).toBe(0);
    expect(Math.max(...s.image)).toBe(1);
  });

  it('mri clips each volume to its 0.5-99.5 percentiles and z-scores it', async () => {
    const rng = new Rng(7);
    const mr = fill(Float32Array, DIMS, () => (rng.nextU32() % 1000) + (rng.nextU32() % 50 === 0 ? 20000 : 0));
    const p = await prepareCase({ id: 'mr', images: [nifti('mr.nii.gz', mr)] }, { intensity: { kind: 'mri' } });
    const sorted = Float64Array.from(mr).sort();
    const lo = percentileSorted(sorted, 0.5);
    const hi = percentileSorted(sorted, 99.5);
    const clipped = Array.from(mr, (v) => Math.min(Math.max(v, lo), hi));
    const mean = clipped.reduce((a, b) => a + b, 0) / clipped.length;
    const std = Math.sqrt(clipped.reduce((a, b) => a + (b - mean) ** 2, 0) / clipped.length);
    const step = (hi - lo) / std / 255;
    for (let k = 0; k < DIMS[2]; k++) {
      const s = sliceOf(p, 'axial', k, { size: 8 });
      for (let i = 0; i < 64; i++) expect(Math.abs(s.image[i]! - (clipped[k * 64 + i]! - mean) / std)).toBeLessThanOrEqual(step / 2 + 1e-5);
    }
    const all = Array.from({ length: DIMS[2] }, (_, k) => [...sliceOf(p, 'axial', k, { size: 8 }).image]).flat();
    expect(all.reduce((a, b) => a + b, 0) / all.length).toBeCloseTo(0, 1);
  });
});

describe('slices', () => {
  it('cuts in canonical RAS+ order whatever the file stores (an LPS file here)', async () => {
    const data = fill(Int16Array, DIMS, value);
    const lps = [[-1, 0, 0, 7], [0, -1, 0, 7], [0, 0, 1, 0], [0, 0, 0, 1]];
    const p = await prepareCase({ id: 'lps', images: [nifti('lps.nii.gz', data, { dims: DIMS, affine: lps })] }, { intensity: parseIntensity('250,500') });
    const s = sliceOf(p, 'axial', 1, { size: 8 });
    // canonical x runs towards R: source i = 7 - x
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) expect(s.image[y * 8 + x]).toBeCloseTo(value(7 - x, 7 - y, 1) / 500, 2);
  });

  it('cuts axial, coronal and sagittal planes', () => {
    const data = Uint8Array.from({ length: 4 * 3 * 2 }, (_, n) => n);
    const dims: Vec3 = [4, 3, 2];
    expect([...cutPlane(data, dims, 'axial', 1)]).toEqual([12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]);
    expect([...cutPlane(data, dims, 'coronal', 2)]).toEqual([8, 9, 10, 11, 20, 21, 22, 23]); // x = i, y = k
    expect([...cutPlane(data, dims, 'sagittal', 3)]).toEqual([3, 7, 11, 15, 19, 23]); // x = j, y = k
  });

  it('resizes with the 2-D path (cv2 linear images, nearest labels), carries neighbours with context 1', async () => {
    const data = fill(Uint8Array, DIMS, (i, j, k) => (i * 31 + j * 17 + k * 40) % 256);
    const labels = fill(Uint8Array, DIMS, (i, j, k) => (i > 2 && j > 3 ? 1 + (k % 2) : 0));
    const p = await prepareCase(
      { id: 'c', images: [nifti('r.nii.gz', data)], label: nifti('r_label.nii.gz', labels) },
      { intensity: IDENTITY, labels: new Map([[0, 'background'], [1, 'a'], [2, 'b']]) },
    );
    expect(sliceCount(p, 'axial')).toBe(5);
    expect(sliceCount(p, 'coronal')).toBe(8);
    const s = sliceOf(p, 'axial', 0, { size: 16, context: 1 });
    expect(s.image).toHaveLength(3 * 256);
    const plane = (k: number) => data.subarray(k * 64, (k + 1) * 64);
    const expected = [0, 0, 1].map((k) => Array.from(resizeLinearCv2(plane(k), 8, 8, 1, 16, 16), (q) => q / 255));
    for (let c = 0; c < 3; c++) for (let i = 0; i < 256; i++) expect(s.image[c * 256 + i]).toBeCloseTo(expected[c]![i]!, 6);
    expect([...s.label]).toEqual([...resizeNearestCv2(labels.subarray(0, 64), 8, 8, 1, 16, 16)]);
    expect(s.id).toBe('c:0');
  });

  it('maps dataset.json values to class indices and names a value it does not list', async () => {
    const labels = fill(Uint8Array, DIMS, (i) => (i < 3 ? 0 : i < 6 ? 5 : 9));
    const img = nifti('m.nii.gz', fill(Uint8Array, DIMS, () => 1));
    const path = nifti('m_label.nii.gz', labels);
    const p = await prepareCase({ id: 'm', images: [img], label: path }, { intensity: IDENTITY, labels: new Map([[0, 'bg'], [5, 'liver'], [9, 'spleen']]) });
    expect([...new Set(p.labels)]).toEqual([0, 1, 2]);
    await expect(prepareCase({ id: 'm', images: [img], label: path }, { intensity: IDENTITY, labels: new Map([[0, 'bg'], [5, 'liver']]) })).rejects.toThrow(
      `${path}: label value 9 is not one of the classes (0, 5)`,
    );
  });

  it('refuses a label on another grid, naming the file', async () => {
    const img = nifti('g.nii.gz', fill(Uint8Array, DIMS, () => 1));
    const path = nifti('g_label.nii.gz', new Uint8Array(8 * 8 * 4), { dims: [8, 8, 4] });
    await expect(prepareCase({ id: 'g', images: [img], label: path }, { intensity: IDENTITY })).rejects.toThrow(`${path}: label is 8×8×4 voxels but its image is 8×8×5`);
  });
});

describe('streaming loader', () => {
  let ds: VolumeDataset;
  const depth = (c: number) => 3 + c; // cases of 3..8 slices
  beforeAll(async () => {
    const root = join(tmp, 'Dataset002_Stream');
    for (let c = 0; c < 6; c++) {
      const dims: Vec3 = [8, 8, depth(c)];
      writeSyntheticNifti(join(root, 'imagesTr', `s${c}_0000.nii.gz`), { dims }, fill(Int16Array, dims, (i, j, k) => value(i, j, k) - c));
      writeSyntheticNifti(join(root, 'labelsTr', `s${c}.nii.gz`), { dims }, fill(Uint8Array, dims, (i, j) => (i + j + c) % 3));
    }
    writeFileSync(join(root, 'dataset.json'), JSON.stringify({ channel_names: { 0: 'CT' }, labels: { background: 0, a: 1, b: 2 }, file_ending: '.nii.gz' }));
    ds = await scanVolumeDataset(root);
  });

  it('yields every slice once per epoch, shuffled, within the memory budget', async () => {
    const budget = 2 * 8 * 8 * 8 * 2; // two of the largest cases (image + label bytes)
    const loader = new SliceLoader(ds, { size: 16, intensity: { kind: 'ct' }, memoryBytes: budget });
    expect(loader.classes).toBe(3);
    expect(loader.inChannels).toBe(1);
    const ids: string[] = [];
    const all = ds.cases.map((c) => c.id);
    for await (const b of loader.batches(all, { batch: 4, rng: new Rng(3) })) {
      expect(b.images).toHaveLength(b.n * 256);
      expect(b.targets).toHaveLength(b.n * 3 * 256);
      for (let i = 0; i < b.n; i++) for (let p = 0; p < 256; p++) expect(b.targets[i * 768 + b.labels[i * 256 + p]! * 256 + p]).toBe(1);
      expect(b.targets.reduce((a, v) => a + v, 0)).toBe(b.n * 256);
      ids.push(...b.ids);
      expect(loader.cache.bytes).toBeLessThanOrEqual(budget);
    }
    const expected = ds.cases.flatMap((c, n) => Array.from({ length: depth(n) }, (_, k) => `${c.id}:${k}`));
    expect([...ids].sort()).toEqual([...expected].sort());
    expect(ids).not.toEqual(expected); // shuffled
    expect(loader.cache.peakBytes).toBeLessThanOrEqual(budget);
    expect(loader.cache.loads).toBe(6); // each case read once per epoch
    expect(await loader.sliceTotal(all)).toBe(expected.length);
    const coronal = new SliceLoader(ds, { size: 16, intensity: { kind: 'ct' }, axis: 'coronal' });
    expect(await coronal.sliceTotal(all)).toBe(6 * 8); // from the headers, nothing read
    expect(coronal.cache.loads).toBe(0);
  });

  it('splits by case: no case has slices on both sides; context 1 gives 3 channels', async () => {
    const { train, val } = splitCases(ds, 0.34, 1234);
    expect(train.length + val.length).toBe(6);
    expect(train.filter((id) => val.includes(id))).toEqual([]);
    const loader = new SliceLoader(ds, { size: 16, intensity: { kind: 'ct' }, context: 1, memoryBytes: 1 });
    expect(loader.inChannels).toBe(3);
    for await (const b of loader.batches(train, { batch: 5, rng: new Rng(1) })) {
      expect(b.images).toHaveLength(b.n * 3 * 256);
      for (const id of b.ids) expect(train).toContain(id.split(':')[0]);
      expect(loader.cache.bytes).toBeLessThanOrEqual(8 * 8 * 8 * 2); // a budget below one case still holds one case, alone
    }
    const slices = [];
    for await (const s of loader.caseSlices(val[0]!)) slices.push(s.id);
    expect(slices).toEqual(Array.from({ length: slices.length }, (_, k) => `${val[0]}:${k}`));
  });
});

describeWithDataset(
  'msd_hippocampus',
  'slices from msd_hippocampus (MSD Task04, nnU-Net layout)',
  () => {
    it('streams axial MRI slices of a case split within a 1 MB budget', async () => {
      const ds = await scanVolumeDataset(datasetPath('msd_hippocampus'));
      expect(ds.layout).toBe('nnunet');
      expect(ds.cases).toHaveLength(260);
      const { train, val } = splitCases(ds, 0.2, 1234);
      expect(val).toHaveLength(52);
      expect(train.filter((id) => val.includes(id))).toEqual([]);
      const budget = 2 ** 20;
      const loader = new SliceLoader(ds, { size: 64, intensity: { kind: 'mri' }, memoryBytes: budget });
      expect(loader.classes).toBe(3);
      const cases = train.slice(0, 24);
      let slices = 0;
      const seen = new Set<number>();
      for await (const b of loader.batches(cases, { batch: 16, rng: new Rng(1234) })) {
        slices += b.n;
        for (const v of b.labels) seen.add(v);
        expect(b.images.every(Number.isFinite)).toBe(true);
        expect(loader.cache.bytes).toBeLessThanOrEqual(budget);
      }
      let expected = 0;
      for (const id of cases) expected += (await loader.prepared(id)).dims[2];
      expect(slices).toBe(expected);
      expect(await loader.sliceTotal(cases)).toBe(expected);
      expect([...seen].sort()).toEqual([0, 1, 2]);
      // hippocampus_001: 35×51×35 RAS, so 35 axial slices of 35×51
      const p = await loader.prepared('hippocampus_001');
      expect(p.dims).toEqual([35, 51, 35]);
    });
  },
  'dataset.json',
);
