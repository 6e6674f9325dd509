import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checksums } from './checksums.ts';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/errors.ts';
import { readDicomSeries } from '../../../src/data/volume/dicom-series.ts';
import { readVolume } from '../../../src/data/volume/index.ts';
import { parseDicomFile } from '../../../src/data/volume/dicom-file.ts';
import { qformAffine } from '../../../src/data/volume/nifti-header.ts';
import { readNifti } from '../../../src/data/volume/nifti-read.ts';
import { writeLabelNifti } from '../../../src/data/volume/nifti-write.ts';
import { axisCodes } from '../../../src/data/volume/orientation.ts';
import { affineDistance, type Volume } from '../../../src/data/volume/volume.ts';
import { datasetPath, describeWithDataset } from '../../support/datasets.ts';
import { IMPLICIT_LE, writeSeries, type SliceSpec } from '../../support/dicom.ts';
import { PHANTOM, phantomSeries, phantomValue } from './phantom.ts';

// What pydicom 2.3.1 (Debian 12 python3-pydicom; JPEG 2000 through python3-pil's OpenJPEG) gives for
// ../shared/datasets/totalseg_examples/example_ct_dicom: slices ordered by ImagePositionPatient along the normal,
// laid out as dcm2niix does (i = column, j = rows - 1 - row, k ascending), RescaleSlope/Intercept applied; sum,
// sum of squares and sha256 of the volume as little-endian float32, i fastest; the affine in RAS+. Produced once by
// `cd ../shared/datasets && /usr/bin/python3 ../../main/test/data/volume/reference-facts.py` (the last entry).
// The affine equals the one nibabel reads from example_seg_dicom.nii.gz (TotalSegmentator's own dcm2niix output).
const SERIES = {"dims": [512, 512, 20], "spacing": [0.9765625, 0.9765625, 2.0], "affine": [[-0.9765625, 0.0, 0.0, 249.51171875], [0.0, 0.9765625, 0.0, -61.51171875], [0.0, 0.0, 2.0, -804.5], [0.0, 0.0, 0.0, 1.0]], "axcodes": "LAS", "rawDtype": "uint16", "rescale": [1.0, -1024.0], "datatype": "uint16", "sum": -3272217339.0, "sumSq": 3347004838583.0, "sha256": "db7f7afcff329837b8b5d291ecf71f140f8ae942b2ed4f0ba5cb8993c2008574"};

// What pydicom 2.3.1 (GDCM 3.0.21 and Pillow/OpenJPEG as its decoders) reads from fixtures/dicom/*: the phantom.ts
// series transcoded by GDCM and DCMTK into each syntax. Produced once by `cd test/data/volume && sh make-dicom-fixtures.sh`
// (which ends with dicom-facts.py); the lossless ones all equal the phantom itself.
const FIXTURES: Record<string, { syntax: string; dims: number[]; affine: number[][]; sum: number; sumSq: number; sha256: string }> = {
  "bigendian": {"syntax": "1.2.840.10008.1.2.2", "dims": [40, 24, 4], "affine": [[-0.69282032, -0.3, 0.0, 16.9], [-0.4, 0.5196152399999999, 0.0, -31.95115052], [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], "sum": 74403.0, "sumSq": 790090027.0, "sha256": "43c413e6c836955c4a4c7e95097a7b61d16824bcc3241c9fc44f31c6fadf6a88"},
  "deflated": {"syntax": "1.2.840.10008.1.2.1.99", "dims": [40, 24, 4], "affine": [[-0.69282032, -0.3, 0.0, 16.9], [-0.4, 0.5196152399999999, 0.0, -31.95115052], [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], "sum": 74403.0, "sumSq": 790090027.0, "sha256": "43c413e6c836955c4a4c7e95097a7b61d16824bcc3241c9fc44f31c6fadf6a88"},
  "implicit": {"syntax": "1.2.840.10008.1.2", "dims": [40, 24, 4], "affine": [[-0.69282032, -0.3, 0.0, 16.9], [-0.4, 0.5196152399999999, 0.0, -31.95115052], [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], "sum": 74403.0, "sumSq": 790090027.0, "sha256": "43c413e6c836955c4a4c7e95097a7b61d16824bcc3241c9fc44f31c6fadf6a88"},
  "j2k": {"syntax": "1.2.840.10008.1.2.4.90", "dims": [40, 24, 4], "affine": [[-0.69282032, -0.3, 0.0, 16.9], [-0.4, 0.5196152399999999, 0.0, -31.95115052], [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], "sum": 74403.0, "sumSq": 790090027.0, "sha256": "43c413e6c836955c4a4c7e95097a7b61d16824bcc3241c9fc44f31c6fadf6a88"},
  "j2k-lossy": {"syntax": "1.2.840.10008.1.2.4.91", "dims": [40, 24, 4], "affine": [[-0.69282032, -0.3, 0.0, 16.9], [-0.4, 0.5196152399999999, 0.0, -31.95115052], [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], "sum": 74526.0, "sumSq": 789495696.0, "sha256": "8249b581ddaba0cb881e549c51df48bfbdf703dc9cb1c4dee636991e2eb4da3d"},
  "jpeg-p14": {"syntax": "1.2.840.10008.1.2.4.57", "dims": [40, 24, 4], "affine": [[-0.69282032, -0.3, 0.0, 16.9], [-0.4, 0.5196152399999999, 0.0, -31.95115052], [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], "sum": 74403.0, "sumSq": 790090027.0, "sha256": "43c413e6c836955c4a4c7e95097a7b61d16824bcc3241c9fc44f31c6fadf6a88"},
  "jpeg-sv1": {"syntax": "1.2.840.10008.1.2.4.70", "dims": [40, 24, 4], "affine": [[-0.69282032, -0.3, 0.0, 16.9], [-0.4, 0.5196152399999999, 0.0, -31.95115052], [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], "sum": 74403.0, "sumSq": 790090027.0, "sha256": "43c413e6c836955c4a4c7e95097a7b61d16824bcc3241c9fc44f31c6fadf6a88"},
  "jpegls": {"syntax": "1.2.840.10008.1.2.4.80", "dims": [40, 24, 4], "affine": [[-0.69282032, -0.3, 0.0, 16.9], [-0.4, 0.5196152399999999, 0.0, -31.95115052], [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], "sum": 74403.0, "sumSq": 790090027.0, "sha256": "43c413e6c836955c4a4c7e95097a7b61d16824bcc3241c9fc44f31c6fadf6a88"},
  "jpegls-near": {"syntax": "1.2.840.10008.1.2.4.81", "dims": [40, 24, 4], "affine": [[-0.69282032, -0.3, 0.0, 16.9], [-0.4, 0.5196152399999999, 0.0, -31.95115052], [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], "sum": 74492.0, "sumSq": 790113086.0, "sha256": "a9c21590ecb05b0e29a3fd05b19b9433f8238cd0aaea82e16fe1af3760d85754"},
  "rle": {"syntax": "1.2.840.10008.1.2.5", "dims": [40, 24, 4], "affine": [[-0.69282032, -0.3, 0.0, 16.9], [-0.4, 0.5196152399999999, 0.0, -31.95115052], [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], "sum": 74403.0, "sumSq": 790090027.0, "sha256": "43c413e6c836955c4a4c7e95097a7b61d16824bcc3241c9fc44f31c6fadf6a88"},
};

const FIXTURE_DIR = new URL('./fixtures/dicom/', import.meta.url).pathname;
const LOSSLESS_SHA = FIXTURES.implicit!.sha256;


const expectAffine = (a: number[][], b: number[][], tol: number) => expect(affineDistance(a, b)).toBeLessThanOrEqual(tol);

/** The NIfTI grid made for a DICOM volume holds the same affine twice: as sform and as qform (quaternion). */
async function expectGridRoundTrip(v: Volume) {
  expectAffine(qformAffine(v.grid), v.affine, 1e-6);
  const out = join(mkdtempSync(join(tmpdir(), 'mobileutr-dcm-')), 'labels.nii.gz');
  await writeLabelNifti(out, new Uint8Array(v.data.length), v.grid);
  const back = await readNifti(out);
  expect(back.dims).toEqual(v.dims);
  expectAffine(back.affine, v.affine, 1e-4); // float32 in the header
  expectAffine(qformAffine(back.grid), v.affine, 1e-4);
}

function expectUserError(err: unknown, pattern: RegExp) {
  expect(err).toBeInstanceOf(UserError);
  expect((err as Error).message).toMatch(pattern);
  expect((err as Error).message).not.toMatch(/\n/);
}
const failure = (p: Promise<unknown>) => p.then(
  () => undefined,
  (e: unknown) => e,
);

describeWithDataset(
  'totalseg_examples',
  'DICOM series against pydicom: totalseg_examples/example_ct_dicom (JPEG 2000 Lossless, blank UIDs)',
  () => {
    const folder = join(datasetPath('totalseg_examples'), 'example_ct_dicom');
    it('dims, spacing (2 mm between slices, not the 3 mm SliceThickness), affine, HU checksum', async () => {
      const v = await readDicomSeries(folder);
      expect(v.dims).toEqual(SERIES.dims);
      expect(v.spacing).toEqual(SERIES.spacing);
      expectAffine(v.affine, SERIES.affine, 1e-9);
      expect(axisCodes(v.affine)).toBe(SERIES.axcodes);
      expect(v.datatype).toBe(SERIES.datatype);
      const c = checksums(v);
      expect(c.sha256).toBe(SERIES.sha256);
      expect(c.sum).toBe(SERIES.sum);
      expect(c.sumSq).toBe(SERIES.sumSq);
      // TotalSegmentator's label map for this series lies on the same grid
      const seg = await readNifti(join(datasetPath('totalseg_examples'), 'example_seg_dicom.nii.gz'));
      expect(seg.dims).toEqual(v.dims);
      expectAffine(seg.affine, v.affine, 1e-4);
      await expectGridRoundTrip(v);
    });
  },
  'README.md',
);

describe('DICOM syntaxes (fixtures transcoded by GDCM and DCMTK) against pydicom', () => {
  for (const [name, f] of Object.entries(FIXTURES).filter(([n]) => n !== 'rle')) {
    it(`${name} (${f.syntax})`, async () => {
      const dir = join(FIXTURE_DIR, name);
      const first = readdirSync(dir)[0]!;
      expect(parseDicomFile(readFileSync(join(dir, first))).string('x00020010')?.replace(/\0/g, '')).toBe(f.syntax);
      const v = await readDicomSeries(dir);
      expect(v.dims).toEqual(f.dims);
      expect(v.spacing.map((s) => +s.toFixed(6))).toEqual(PHANTOM.spacing); // 2.5 mm between slices; SliceThickness says 5
      expectAffine(v.affine, f.affine, 1e-9);
      const c = checksums(v);
      expect(c.sha256).toBe(f.sha256);
      expect(c.sum).toBe(f.sum);
      expect(c.sumSq).toBe(f.sumSq);
      // lossless: the phantom itself; lossy: close to it
      const [nx, ny] = v.dims;
      let maxErr = 0;
      for (let k = 0; k < PHANTOM.slices; k++)
        for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) maxErr = Math.max(maxErr, Math.abs(v.data[i + nx * (j + ny * k)]! - (phantomValue(i, PHANTOM.rows - 1 - j, k) + PHANTOM.intercept)));
      if (name === 'j2k-lossy') expect(maxErr).toBeLessThan(40);
      else if (name === 'jpegls-near') expect(maxErr).toBeLessThanOrEqual(3);
      else {
        expect(maxErr).toBe(0);
        expect(c.sha256).toBe(LOSSLESS_SHA);
      }
    });
  }

  it('an oblique series gets a consistent NIfTI grid (sform and qform)', async () => {
    await expectGridRoundTrip(await readDicomSeries(join(FIXTURE_DIR, 'j2k')));
  });
});

const tmpSeries = (slices: SliceSpec[]) => writeSeries(mkdtempSync(join(tmpdir(), 'mobileutr-dcm-')), slices);

/** A small signed series: 3 columns × 2 rows, slice k at z = 4k, its values and rescale chosen per slice. */
function signedSlices(n: number, over: (k: number) => Partial<SliceSpec> = () => ({})): SliceSpec[] {
  return Array.from({ length: n }, (_, k) => ({
    rows: 2,
    columns: 3,
    pixels: Int16Array.from([-5, 0, 7, 100, -2048, 2047].map((x) => x + k)),
    position: [0, 0, 4 * k] as [number, number, number],
    seriesUid: '',
    ...over(k),
  }));
}

describe('DICOM uncompressed series written here', () => {
  it('Explicit and Implicit VR LE, signed, per-slice rescale, BitsStored 12 with the high bits set, order by position not InstanceNumber', async () => {
    for (const syntax of [undefined, IMPLICIT_LE]) {
      const slices = signedSlices(3, (k) => ({ syntax, slope: k + 1, intercept: -k, instanceNumber: 3 - k, bitsStored: 12 })).reverse();
      // high bits above BitsStored carry garbage in the first stored value of each slice: not part of the pixel
      for (const s of slices) s.pixels[1] = (s.pixels[1]! | 0x7000) << 16 >> 16;
      const v = await readDicomSeries(tmpSeries(slices));
      expect(v.dims).toEqual([3, 2, 3]);
      expect(v.spacing).toEqual([0.75, 0.5, 4]);
      expect(v.datatype).toBe('int16');
      for (let k = 0; k < 3; k++) {
        const stored = [-5, 0, 7, 100, -2048, 2047].map((x) => x + k);
        const hu = stored.map((x) => (((x & 0xfff) ^ 0x800) - 0x800) * (k + 1) - k); // 12-bit two's complement
        // j = 1 - row (rows flipped)
        expect(Array.from(v.data.subarray(6 * k, 6 * k + 6))).toEqual([...hu.slice(3), ...hu.slice(0, 3)]);
      }
      // LPS (0,0,0) is the first pixel of row 0 of the lowest slice; voxel (0, 1, 0) in RAS+ is (-0, -0, 0)
      expectAffine(v.affine, [
        [-0.75, 0, 0, 0],
        [0, 0.5, 0, -0.5],
        [0, 0, 4, 0],
        [0, 0, 0, 1],
      ], 1e-12);
    }
  });

  it('a single slice takes its thickness as spacing', async () => {
    const v = await readDicomSeries(tmpSeries(signedSlices(1, () => ({ sliceThickness: 1.25 }))));
    expect(v.spacing).toEqual([0.75, 0.5, 1.25]);
  });
});

describe('DICOM bad input: one clear line naming the folder', () => {
  it('two series by SeriesInstanceUID', async () => {
    const dir = tmpSeries(signedSlices(4, (k) => ({ seriesUid: k < 2 ? '1.2.3.1' : '1.2.3.2' })));
    expectUserError(await failure(readDicomSeries(dir)), new RegExp(`^${dir}: 2 series in one folder \\(SeriesInstanceUID 1\\.2\\.3\\.1 \\(2 files\\), 1\\.2\\.3\\.2 \\(2 files\\)\\); put each series in a folder of its own$`));
  });

  it('two series with blank UIDs: by orientation, by size, by position', async () => {
    const tilted = tmpSeries(signedSlices(4, (k) => ({ orientation: k === 3 ? [1, 0, 0, 0, 0, -1] : [1, 0, 0, 0, 1, 0] })));
    expectUserError(await failure(readDicomSeries(tilted)), new RegExp(`^${tilted}: two series in one folder\\? slice000\\.dcm and slice003\\.dcm differ in orientation \\(ImageOrientationPatient\\) \\(1\\\\0\\\\0\\\\0\\\\1\\\\0 vs 1\\\\0\\\\0\\\\0\\\\0\\\\-1\\)`));
    const sizes = tmpSeries([...signedSlices(2), { ...signedSlices(1)[0]!, rows: 3, columns: 2, position: [0, 0, 8] }]);
    expectUserError(await failure(readDicomSeries(sizes)), /two series in one folder\? slice000\.dcm and slice002\.dcm differ in size \(3×2 vs 2×3\)/);
    const twice = tmpSeries([...signedSlices(3), ...signedSlices(3)]);
    expectUserError(await failure(readDicomSeries(twice)), new RegExp(`^${twice}: slice\\d+\\.dcm and slice\\d+\\.dcm are at the same position \\(0 mm along the slice normal\\): two series in one folder, or a file copied twice\\?$`));
    const shifted = tmpSeries(signedSlices(4, (k) => ({ position: [k === 2 ? 30 : 0, 0, 4 * k] })));
    expectUserError(await failure(readDicomSeries(shifted)), /slice002\.dcm is off the line through the other slices' positions .*two series in one folder\?$/);
  });

  it('a missing slice (uneven spacing)', async () => {
    const dir = tmpSeries(signedSlices(6).filter((_, k) => k !== 3));
    expectUserError(await failure(readDicomSeries(dir)), new RegExp(`^${dir}: uneven slice spacing: slices are 4 mm apart, but 8 mm between slice002\\.dcm and slice003\\.dcm \\(at 8 mm and 16 mm along the slice normal\\); 1 slice\\(s\\) missing\\?$`));
  });

  it('a transfer syntax we cannot decode', async () => {
    const rle = join(FIXTURE_DIR, 'rle');
    expectUserError(await failure(readDicomSeries(rle)), new RegExp(`^${rle}: slice000\\.dcm is stored as RLE Lossless, which cannot be decoded; readable: .*JPEG 2000 Lossless.*JPEG-LS Lossless.*JPEG Lossless`));
    const dir = tmpSeries(signedSlices(2, () => ({ syntax: '1.2.840.10008.1.2.4.100', encapsulated: new Uint8Array(16) })));
    expectUserError(await failure(readDicomSeries(dir)), new RegExp(`^${dir}: slice000\\.dcm is stored as MPEG2 Main Profile, which cannot be decoded`));
    const unknown = tmpSeries(signedSlices(2, () => ({ syntax: '1.2.3.999', encapsulated: new Uint8Array(16) })));
    expectUserError(await failure(readDicomSeries(unknown)), /slice000\.dcm is stored as unknown transfer syntax 1\.2\.3\.999, which cannot be decoded/);
  });

  it('a corrupt codestream names the file', async () => {
    for (const syntax of ['1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.70']) {
      const dir = tmpSeries(signedSlices(2, () => ({ syntax, encapsulated: Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff) })));
      expectUserError(await failure(readDicomSeries(dir)), new RegExp(`^${dir}: slice000\\.dcm: JPEG.* pixel data could not be decoded`));
    }
  });

  it('no DICOM files, not a folder, a missing folder', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'mobileutr-dcm-'));
    writeFileSync(join(empty, 'notes.txt'), 'not DICOM');
    expectUserError(await failure(readDicomSeries(empty)), new RegExp(`^${empty}: no DICOM image files in the folder`));
    expectUserError(await failure(readDicomSeries(join(empty, 'notes.txt'))), /notes\.txt: not a folder/);
    expectUserError(await failure(readDicomSeries('/nonexistent/series')), /^\/nonexistent\/series: DICOM folder not found$/);
  });

  it('the phantom fixture series is what phantom.ts writes', async () => {
    const v = await readDicomSeries(tmpSeries(phantomSeries()));
    expect(checksums(v).sha256).toBe(LOSSLESS_SHA);
  });
});

describe('readVolume', () => {
  it('reads a NIfTI file or a DICOM folder, and names anything else', async () => {
    expect((await readVolume(join(FIXTURE_DIR, 'jpegls'))).dims).toEqual([40, 24, 4]);
    expect((await readVolume(join(FIXTURE_DIR, '..', 'n1_uint16_qform_rot90.nii'))).dims).toEqual([6, 5, 4]);
    expectUserError(await failure(readVolume(join(FIXTURE_DIR, 'jpegls', 'slice000.dcm'))), /slice000\.dcm: not a volume \(a \.nii or \.nii\.gz file, or a folder holding one DICOM series\)$/);
    expectUserError(await failure(readVolume('/nonexistent/case')), /^\/nonexistent\/case: not found$/);
  });
});
