import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { checksums } from './checksums.ts';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.ts';
import { decodeNifti, readNifti } from '../../../src/data/volume/nifti-read.ts';
import { encodeLabelNifti, writeLabelNifti } from '../../../src/data/volume/nifti-write.ts';
import { axisCodes, fromCanonical, toCanonical } from '../../../src/data/volume/orientation.ts';
import { applyAffine, type Volume } from '../../../src/data/volume/volume.ts';
import { datasetPath, describeWithDataset } from '../../support/datasets.ts';

interface Facts {
  dims: number[];
  spacing: number[];
  affine: number[][];
  axcodes: string;
  datatype: string;
  sum: number;
  sumSq: number;
  sha256: string;
  qformCode?: number;
  sformCode?: number;
  volume?: number;
  endian?: string;
}

// What nibabel 5.0.0 (Debian 12 python3-nibabel) reports for the shared volumes: dims (img.shape), spacing
// (header.get_zooms()), affine (img.affine = get_best_affine), aff2axcodes, qform/sform codes, the stored dtype,
// and sum, sum of squares (float64) and sha256 of get_fdata() cast to little-endian float32 in file order (i fastest).
// Produced once by `cd ../shared/datasets && /usr/bin/python3 ../../main/test/data/volume/reference-facts.py` (the
// repository checked out at ../main), the script next to this file.
const SHARED: Record<string, Facts> = {
  "totalseg_examples/example_ct_sm.nii.gz": {"dims": [122, 101, 30], "spacing": [3.0, 3.0, 3.0], "affine": [[3.0, 0.0, 0.0, -177.95632934570312], [0.0, 3.0, 0.0, 11.319000244140625], [0.0, 0.0, 3.0, 94.3017578125], [0.0, 0.0, 0.0, 1.0]], "axcodes": "RAS", "qformCode": 0, "sformCode": 2, "datatype": "int16", "sum": -130894872.0, "sumSq": 123249288398.0, "sha256": "849ac4440faf1c7117d1dcd168c0ceaef0ebdfccf80d6e51fa215b60cab4cedf"},
  "totalseg_examples/example_ct.nii.gz": {"dims": [122, 101, 112], "spacing": [3.0, 3.0, 3.0], "affine": [[3.0, 0.0, 0.0, -177.95632934570312], [0.0, 3.0, 0.0, 11.319000244140625], [0.0, 0.0, 3.0, 94.3017578125], [0.0, 0.0, 0.0, 1.0]], "axcodes": "RAS", "qformCode": 0, "sformCode": 2, "datatype": "int32", "sum": -496851173.0, "sumSq": 475266984069.0, "sha256": "3353dbcc772fc442541c9b6428897a9d2493d461ea0c52d71e8eb491e2eb3ac4"},
  "totalseg_examples/example_mr_sm.nii.gz": {"dims": [117, 91, 20], "spacing": [3.0, 3.0, 3.0], "affine": [[-3.0, 0.0, 0.0, 168.59963989257812], [0.0, -3.0, 0.0, 166.35943603515625], [0.0, 0.0, 3.0, 28.989641189575195], [0.0, 0.0, 0.0, 1.0]], "axcodes": "LPS", "qformCode": 0, "sformCode": 2, "datatype": "int16", "sum": 41238711.0, "sumSq": 15983871059.0, "sha256": "a8ca29f48186115812b5f9366dbef6da9cc203903af71a06125669f8c4d65403"},
  "totalseg_examples/example_seg.nii.gz": {"dims": [122, 101, 30], "spacing": [3.0, 3.0, 3.0], "affine": [[3.0, 0.0, 0.0, -177.95632934570312], [0.0, 3.0, 0.0, 11.319000244140625], [0.0, 0.0, 3.0, 94.3017578125], [0.0, 0.0, 0.0, 1.0]], "axcodes": "RAS", "qformCode": 0, "sformCode": 2, "datatype": "uint8", "sum": 2734697.0, "sumSq": 187296427.0, "sha256": "e4c5989fd3aa18046de0bb3f2f685ed83effbb6b15131fcdc223eeb1f069f2b4"},
  "totalseg_examples/example_seg_dicom.nii.gz": {"dims": [512, 512, 20], "spacing": [0.9765625, 0.9765625, 2.0], "affine": [[-0.9765625, 0.0, 0.0, 249.51171875], [-0.0, 0.9765625, 0.0, -61.51171875], [0.0, -0.0, 2.0, -804.5], [0.0, 0.0, 0.0, 1.0]], "axcodes": "LAS", "qformCode": 0, "sformCode": 2, "datatype": "uint8", "sum": 14229599.0, "sumSq": 1009167493.0, "sha256": "31932a98a61aae99717dd3e5d076e6279051edcf14cba51408c94a73e3e977d9"},
  "msd_hippocampus/imagesTr/hippocampus_001_0000.nii.gz": {"dims": [35, 51, 35], "spacing": [1.0, 1.0, 1.0], "affine": [[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]], "axcodes": "RAS", "qformCode": 1, "sformCode": 1, "datatype": "uint8", "sum": 3968524.0, "sumSq": 291048722.0, "sha256": "51473b0131f4e7481b85d58abff4384f8eff386eaecc88b1cd8805fc1441576e"},
  "msd_hippocampus/labelsTr/hippocampus_001.nii.gz": {"dims": [35, 51, 35], "spacing": [1.0, 1.0, 1.0], "affine": [[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]], "axcodes": "RAS", "qformCode": 1, "sformCode": 1, "datatype": "uint8", "sum": 4572.0, "sumSq": 7820.0, "sha256": "65a0f8f07e91b18b7b1f39667f680d3ac075219784407d7808ad89790f2590c8"},
  "msd_hippocampus/imagesTr/hippocampus_003_0000.nii.gz": {"dims": [34, 52, 35], "spacing": [1.0, 1.0, 1.0], "affine": [[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]], "axcodes": "RAS", "qformCode": 1, "sformCode": 1, "datatype": "float32", "sum": 29866089.86869049, "sumSq": 16809973857.688423, "sha256": "0409c6eecb29a41e2569da906709d2413dbad0343d944d51a23056bf08c21927"},
  "msd_hippocampus/labelsTr/hippocampus_003.nii.gz": {"dims": [34, 52, 35], "spacing": [1.0, 1.0, 1.0], "affine": [[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]], "axcodes": "RAS", "qformCode": 1, "sformCode": 1, "datatype": "float32", "sum": 5156.0, "sumSq": 8762.0, "sha256": "76f6ad9d535994f5498624f581819b9f75c1237f8a4d70bf39a0d4e315771044"},
  "msd_hippocampus/imagesTr/hippocampus_136_0000.nii.gz": {"dims": [34, 49, 41], "spacing": [1.0, 1.0, 1.0], "affine": [[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]], "axcodes": "RAS", "qformCode": 1, "sformCode": 1, "datatype": "float32", "sum": 14530758920.213867, "sumSq": 3724815066800193.5, "sha256": "e90f7ed254ab0beab415dd09bddd420f06a250220134e9166c9f1ceb82594d0f"},
};

// What nibabel 5.0.0 reads back from the fixtures it wrote (fixtures/, ~2 kB): NIfTI-2 big endian int16 with
// scl_slope 0.5 / scl_inter -10 and only a qform (qfac -1, rotated 30° about z); NIfTI-1 big endian float64 with
// an sform that wins over a different qform; uint16 with a qform turned 90° (voxel axes permuted vs RAS); a 4-D
// int8 file (facts of volume 1). Produced once by `cd test/data/volume && /usr/bin/python3 make-nifti-fixtures.py`.
const FIXTURES: Record<string, Facts> = {
  "n2_be_int16_scaled_qform.nii": {"dims": [5, 4, 3], "spacing": [0.7999999999999999, 0.8999999999999999, 2.5], "affine": [[0.6928203230275509, -0.4499999999999999, 0.0, -12.5], [0.3999999999999999, 0.7794228634059948, 0.0, 30.25], [0.0, 0.0, -2.5, 7.0], [0.0, 0.0, 0.0, 1.0]], "axcodes": "RAI", "datatype": ">i2", "endian": ">", "sum": 1598.5, "sumSq": 574563.25, "sha256": "983e019dddd2b3792d105dcb82c09f29678bb72619307da2157e43b89473063e"},
  "n1_be_float64_sform.nii.gz": {"dims": [4, 3, 6], "spacing": [2.0, 2.0, 2.0], "affine": [[1.5, 0.0, 0.0, 10.0], [0.0, 9.184850732644269e-17, -3.0, -20.0], [0.0, 1.5, 1.8369701465288538e-16, 30.0], [0.0, 0.0, 0.0, 1.0]], "axcodes": "RSP", "datatype": ">f8", "endian": ">", "sum": 7102.629049753752, "sumSq": 804477.7834348241, "sha256": "75f7967419f3ae94e367a811fd7c2ee8903b9e4d67ac3fcead2af4abd04c8147"},
  "n1_uint16_qform_rot90.nii": {"dims": [6, 5, 4], "spacing": [0.699999988079071, 1.100000023841858, 4.0], "affine": [[2.395997883705573e-08, -1.1000000238418572, 0.0, 5.0], [0.6999999880790706, 3.765139677264477e-08, 0.0, 6.0], [0.0, 0.0, 4.0, 7.0], [0.0, 0.0, 0.0, 1.0]], "axcodes": "ALS", "datatype": "uint16", "endian": "<", "sum": 245783.0, "sumSq": 638729311.0, "sha256": "2e069cfe973536c8210ea8e4917dd189480fa197e3bee1811202d06068165dd6"},
  "n1_4d_int8.nii.gz": {"dims": [3, 4, 2], "spacing": [1.0, 2.0, 3.0], "affine": [[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 1.0]], "axcodes": "RAS", "datatype": "int8", "endian": "<", "sum": 356.0, "sumSq": 91372.0, "sha256": "93f3246121c98bd536f1eb1ae0bc0db0cf295312b3f0432a23cd9f03c9d8eda0", "volume": 1},
};

const FIXTURE_DIR = new URL('./fixtures/', import.meta.url).pathname;
const DTYPE: Record<string, string> = { '>i2': 'int16', '>f8': 'float64' };


function expectFacts(v: Volume, f: Facts) {
  expect(v.dims).toEqual(f.dims);
  v.spacing.forEach((s, i) => expect(s).toBeCloseTo(f.spacing[i]!, 6));
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(v.affine[r]![c]).toBeCloseTo(f.affine[r]![c]!, 9);
  expect(axisCodes(v.affine)).toBe(f.axcodes);
  expect(v.datatype).toBe(DTYPE[f.datatype] ?? f.datatype);
  if (f.qformCode !== undefined) expect([v.grid.qformCode, v.grid.sformCode]).toEqual([f.qformCode, f.sformCode]);
  const c = checksums(v);
  expect(c.sha256).toBe(f.sha256);
  // float64 sums: exact for integer data; float data differ only by summation order (numpy sums pairwise)
  expect(Math.abs(c.sum - f.sum)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(f.sum)) + (v.datatype === 'float64' ? 1e-4 : 0));
  expect(Math.abs(c.sumSq - f.sumSq)).toBeLessThanOrEqual(1e-9 * Math.max(1, f.sumSq) + (v.datatype === 'float64' ? 1e-2 : 0));
}

/** Reads back what was written for `v`'s grid and checks that the geometry is the same, field by field. */
async function roundTrip(v: Volume, labels: Uint8Array | Int16Array, name: string) {
  const dir = mkdtempSync(join(tmpdir(), 'mobileutr-nii-'));
  const out = join(dir, name);
  await writeLabelNifti(out, labels, v.grid);
  const back = await readNifti(out);
  expect(back.grid).toEqual(v.grid);
  expect(back.affine).toEqual(v.affine);
  expect(back.dims).toEqual(v.dims);
  expect(back.spacing).toEqual(v.spacing);
  expect(back.datatype).toBe(labels instanceof Uint8Array ? 'uint8' : 'int16');
  expect(sameBytes(back.data, Float32Array.from(labels))).toBe(true);
}

const sameBytes = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Voxel index (rounded) of world point `p` under `affine` (3×3 solve by Cramer's rule). */
function voxelAt(affine: number[][], p: number[]): number[] {
  const m = [0, 1, 2].map((r) => [0, 1, 2].map((c) => affine[r]![c]!));
  const b = [0, 1, 2].map((r) => p[r]! - affine[r]![3]!);
  const det3 = (a: number[][]) => a[0]![0]! * (a[1]![1]! * a[2]![2]! - a[1]![2]! * a[2]![1]!) - a[0]![1]! * (a[1]![0]! * a[2]![2]! - a[1]![2]! * a[2]![0]!) + a[0]![2]! * (a[1]![0]! * a[2]![1]! - a[1]![1]! * a[2]![0]!);
  const d = det3(m);
  return [0, 1, 2].map((c) => det3(m.map((row, r) => row.map((v, k) => (k === c ? b[r]! : v)))) / d);
}

function checkCanonical(v: Volume) {
  const { volume: c, reorientation } = toCanonical(v);
  expect(axisCodes(c.affine)).toBe('RAS');
  // the same voxel sits at the same world position with the same value
  const [nx, ny] = c.dims;
  const [sx, sy] = v.dims;
  for (let n = 0; n < c.data.length; n += Math.max(1, Math.floor(c.data.length / 97))) {
    const ijk = voxelAt(v.affine, applyAffine(c.affine, [n % nx, Math.floor(n / nx) % ny, Math.floor(n / (nx * ny))]));
    ijk.forEach((x) => expect(Math.abs(x - Math.round(x))).toBeLessThan(1e-6));
    const [i, j, k] = ijk.map(Math.round) as [number, number, number];
    expect(c.data[n]).toBe(v.data[i + sx * (j + sy * k)]);
  }
  expect(sameBytes(fromCanonical(c.data, reorientation), v.data)).toBe(true);
}

describe('NIfTI fixtures written by nibabel (NIfTI-2, big endian, scaling, qform, sform, 4-D)', () => {
  for (const [name, f] of Object.entries(FIXTURES)) {
    it(name, async () => {
      const v = await readNifti(join(FIXTURE_DIR, name), f.volume === undefined ? {} : { volumeIndex: f.volume });
      expectFacts(v, f);
      checkCanonical(v);
      const labels = Int16Array.from(v.data, (x) => Math.round(x));
      await roundTrip(v, labels, 'labels.nii.gz');
    });
  }

  it('a NIfTI-2 source is written back as NIfTI-2 with its float64 geometry', async () => {
    const v = await readNifti(join(FIXTURE_DIR, 'n2_be_int16_scaled_qform.nii'));
    expect(v.grid.version).toBe(2);
    const bytes = encodeLabelNifti(new Uint8Array(v.data.length), v.grid);
    expect(new DataView(bytes.buffer).getInt32(0, true)).toBe(540);
    await roundTrip(v, new Uint8Array(v.data.length).map((_, i) => i % 3), 'labels.nii');
  });
});

describeWithDataset(
  'totalseg_examples',
  'NIfTI readers against nibabel: totalseg_examples (CT int16/int32, MRI LPS, label maps with extensions)',
  () => {
    for (const [name, f] of Object.entries(SHARED).filter(([n]) => n.startsWith('totalseg_examples/'))) {
      it(name, async () => {
        const v = await readNifti(join(datasetPath('totalseg_examples'), '..', name));
        expectFacts(v, f);
        checkCanonical(v);
        await roundTrip(v, Uint8Array.from(v.data, (x) => Math.max(0, Math.min(255, x))), 'seg.nii.gz');
      });
    }
  },
  'README.md',
);

describeWithDataset(
  'msd_hippocampus',
  'NIfTI readers against nibabel: msd_hippocampus (uint8 and float32 images, float32 labels)',
  () => {
    for (const [name, f] of Object.entries(SHARED).filter(([n]) => n.startsWith('msd_hippocampus/'))) {
      it(name, async () => {
        const v = await readNifti(join(datasetPath('msd_hippocampus'), '..', name));
        expectFacts(v, f);
        checkCanonical(v);
        await roundTrip(v, Uint8Array.from(v.data, (x) => x % 256), 'seg.nii.gz');
      });
    }
  },
  'dataset.json',
);

/** A small valid NIfTI-1 (2×3×4 int16, RAS 1 mm) to break in the tests below. */
function tinyNifti(): Uint8Array {
  const grid = {
    version: 1 as const,
    dims: [2, 3, 4] as [number, number, number],
    pixdim: [1, 1, 1, 1, 0, 0, 0, 0],
    qformCode: 0,
    sformCode: 1,
    quatern: [0, 0, 0] as [number, number, number],
    qoffset: [0, 0, 0] as [number, number, number],
    srow: [
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 1, 0],
    ],
    xyztUnits: 2,
  };
  return encodeLabelNifti(Int16Array.from({ length: 24 }, (_, i) => i - 5), grid);
}

/** Expects one clear line, as a UserError the CLI prints without a stack trace. */
function expectUserError(fn: () => unknown, pattern: RegExp) {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UserError);
  const msg = (err as Error).message;
  expect(msg).toMatch(pattern);
  expect(msg).not.toMatch(/\n/);
}

describe('NIfTI bad input: one clear line each', () => {
  it('the tiny file itself reads', () => {
    const v = decodeNifti(tinyNifti(), 'tiny.nii');
    expect(v.dims).toEqual([2, 3, 4]);
    expect(v.data[0]).toBe(-5);
  });

  it('a truncated .nii.gz', () => {
    const gz = gzipSync(tinyNifti());
    expectUserError(() => decodeNifti(gz.subarray(0, gz.length - 12), 'cut.nii.gz'), /^cut\.nii\.gz: the gzip stream is truncated/);
    const real = readFileSync(join(FIXTURE_DIR, 'n1_be_float64_sform.nii.gz'));
    expectUserError(() => decodeNifti(real.subarray(0, 300), 'cut2.nii.gz'), /cut2\.nii\.gz: the gzip stream is truncated/);
  });

  it('a gzip bomb stops at the size the header declares', () => {
    // the header (2×3×4 int16) and 1 GiB of zeros, as 1025 gzip members: 1 MB on disk
    const mib = gzipSync(Buffer.alloc(2 ** 20));
    const bomb = Buffer.concat([gzipSync(tinyNifti()), ...Array.from({ length: 1024 }, () => mib)]);
    expect(bomb.length).toBeLessThan(2 ** 21);
    const t0 = performance.now();
    expectUserError(() => decodeNifti(bomb, 'bomb.nii.gz'), /^bomb\.nii\.gz: the data inflates to more than the header declares 2×3×4 int16 voxels from offset 352 \(400 bytes\).*gzip bomb\)$/);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('a header declaring too many voxels is refused before inflating', () => {
    const bytes = tinyNifti();
    const v = new DataView(bytes.buffer);
    [2048, 2048, 2048].forEach((d, i) => v.setInt16(42 + i * 2, d, true));
    expectUserError(() => decodeNifti(gzipSync(bytes), 'huge.nii.gz'), /^huge\.nii\.gz: 2048×2048×2048 = 8,589,934,592 voxels is more than the limit of 268,435,456$/);
    expectUserError(() => decodeNifti(tinyNifti(), 'small.nii', { maxVoxels: 10 }), /2×3×4 = 24 voxels is more than the limit of 10/);
  });

  it('header dimensions that disagree with the data size', () => {
    const bytes = tinyNifti();
    new DataView(bytes.buffer).setInt16(46, 5, true); // dim[3] 4 -> 5
    expectUserError(() => decodeNifti(bytes, 'short.nii'), /^short\.nii: the file has 400 bytes, but the header declares 2×3×5 int16 voxels from offset 352 \(412 bytes\): header dimensions disagree with the data size \(truncated file\?\)$/);
    expectUserError(() => decodeNifti(gzipSync(bytes), 'short.nii.gz'), /^short\.nii\.gz: the data inflates to 400 bytes, but the header declares 2×3×5 int16 voxels.*disagree with the data size$/);
    new DataView(bytes.buffer).setInt16(46, 3, true); // dim[3] -> 3: data longer than declared
    expectUserError(() => decodeNifti(bytes, 'long.nii'), /^long\.nii: the file has 400 bytes, but the header declares 2×3×3 int16 voxels.*\(388 bytes\): header dimensions disagree/);
    expectUserError(() => decodeNifti(gzipSync(bytes), 'long.nii.gz'), /^long\.nii\.gz: the data inflates to more than the header declares 2×3×3/);
  });

  it('a 4-D file needs a volume index', async () => {
    const path = join(FIXTURE_DIR, 'n1_4d_int8.nii.gz');
    await expect(readNifti(path)).rejects.toThrow(/n1_4d_int8\.nii\.gz: a 4-D file \(3×4×2×3, 3 volumes\); pick one with --volume-index 0\.\.2$/);
    await expect(readNifti(path, { volumeIndex: 3 })).rejects.toThrow(/--volume-index 3 is out of range; the file has volumes 0\.\.2/);
    const v0 = await readNifti(path, { volumeIndex: 0 });
    const v1 = await readNifti(path, { volumeIndex: 1 });
    expect(checksums(v1).sha256).toBe(FIXTURES['n1_4d_int8.nii.gz']!.sha256);
    expect(checksums(v0).sha256).not.toBe(checksums(v1).sha256);
  });

  it('unsupported datatypes are named', () => {
    for (const [code, name] of [
      [128, 'RGB24'],
      [32, 'complex64'],
      [1792, 'complex128'],
      [1, 'binary'],
      [3000, 'code 3000'],
    ] as const) {
      const bytes = tinyNifti();
      new DataView(bytes.buffer).setInt16(70, code, true);
      expectUserError(() => decodeNifti(bytes, 'odd.nii'), new RegExp(`^odd\\.nii: NIfTI datatype ${name}.* is not supported`));
    }
  });

  it('not a NIfTI file, and a missing file', async () => {
    expectUserError(() => decodeNifti(new Uint8Array(400), 'zeros.nii'), /^zeros\.nii: not a NIfTI file/);
    expectUserError(() => decodeNifti(gzipSync(Buffer.from('hello')), 'hello.nii.gz'), /^hello\.nii\.gz: too short for a NIfTI header/);
    const pair = tinyNifti();
    pair.set([0x6e, 0x69, 0x31, 0], 344); // "ni1": .hdr/.img pair
    expectUserError(() => decodeNifti(pair, 'pair.hdr'), /^pair\.hdr: a NIfTI \.hdr\/\.img pair/);
    await expect(readNifti('/nonexistent/x.nii.gz')).rejects.toThrow(/^\/nonexistent\/x\.nii\.gz: file not found$/);
  });

  it('an interrupted write leaves no file behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mobileutr-nii-'));
    const v = decodeNifti(tinyNifti(), 'tiny.nii');
    writeFileSync(join(dir, 'blocker'), '');
    // the target's folder is a file: writing fails, and neither the target nor a partial file is left
    await expect(writeLabelNifti(join(dir, 'blocker', 'out.nii.gz'), new Uint8Array(24), v.grid)).rejects.toThrow();
    await expect(writeLabelNifti(join(dir, 'out.nii.gz'), new Uint8Array(23), v.grid)).rejects.toThrow(/label volume has 23 voxels, the grid 2×3×4 has 24/);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(dir)).toEqual(['blocker']);
  });
});
