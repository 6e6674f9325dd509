import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDicomSeries } from '../../src/data/volume/dicom-series.ts';
import { readNifti } from '../../src/data/volume/nifti-read.ts';
import { encodeProbabilityNifti } from '../../src/data/volume/nifti-write.ts';
import { toCanonical, toCanonicalData } from '../../src/data/volume/orientation.ts';
import { cutPlane, sliceOf } from '../../src/data/volume/slices.ts';
import { prepareCase } from '../../src/data/volume/prepare.ts';
import { affineDistance, type Volume } from '../../src/data/volume/volume.ts';
import { createModel } from '../../src/models/model.ts';
import { saveWeights } from '../../src/models/weights.ts';
import { logitsToMask } from '../../src/pipeline/postprocess.ts';
import { Segmenter } from '../../src/pipeline/segmenter.ts';
import { slicePlane } from '../../src/data/volume/slices.ts';
import { resizeNearestCv2 } from '../../src/data/resize.ts';
import { datasetPath, describeWithDataset } from '../support/datasets.ts';
import { CT_META, geometryBytes, volumeModel, writeAwkwardCt } from '../pipeline/volume-synthetic.ts';
import { BIN } from '../support/bin.ts';


function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user-facing failure: exit 1, one line naming the problem, no stack trace. */
function expectCleanFailure(r: ReturnType<typeof cli>, pattern: RegExp) {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('mobileutr: error:'))).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

const dir = mkdtempSync(join(tmpdir(), 'mobileutr-predict-volume-'));
const p = (...parts: string[]) => join(dir, ...parts);
const noPartials = (folder: string) => readdirSync(folder).filter((f) => f.includes('.partial-'));

beforeAll(async () => {
  writeAwkwardCt(p('ct.nii.gz'));
  await volumeModel(CT_META, 32, 7, p('vol.safetensors'));
  await saveWeights(createModel('mobileutr', { size: 32, inChannels: 1, classes: 3 }), p('2d.safetensors'));
  writeFileSync(p('truncated.nii.gz'), readFileSync(p('ct.nii.gz')).subarray(0, 900));
  // a 4-D file: two CT-like volumes on the synthetic grid
  const ct = await readNifti(p('ct.nii.gz'));
  const two = new Float32Array(ct.data.length * 2);
  two.set(ct.data);
  two.set(ct.data.map((v) => -v), ct.data.length);
  writeFileSync(p('four-d.nii.gz'), gzipSync(encodeProbabilityNifti(two, 2, ct.grid)));
  writeFileSync(p('scan.png'), await sharp(new Uint8Array(20 * 20).fill(90), { raw: { width: 20, height: 20, channels: 1 } }).png().toBuffer());
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The direct reference for slice k (canonical): the training code's slice, the network, argmax, nearest back. */
async function referenceSlice(path: string, k: number, seg: Segmenter): Promise<Uint8Array> {
  const c = await prepareCase({ id: 'ref', images: [path] }, { intensity: CT_META.intensity });
  const [w, h] = slicePlane(c.dims, 'axial');
  const mask = logitsToMask(await seg.logits(sliceOf(c, 'axial', k, { size: 32 }).image, 1), 3, 32 * 32);
  return resizeNearestCv2(mask, 32, 32, 1, w, h).map((cls) => CT_META.classValues[cls]!);
}

/** Checks a predicted label file against its source: the same grid, and every voxel a class value. */
async function expectOnSourceGrid(outPath: string, source: Volume) {
  const back = await readNifti(outPath);
  expect(back.grid).toEqual(source.grid);
  expect(back.affine).toEqual(source.affine);
  expect(back.datatype).toBe('uint8');
  expect(back.data.every((v) => CT_META.classValues.includes(v))).toBe(true);
  return back;
}

describe('mobileutr predict on volumes', () => {
  it('writes <case>.nii.gz on the source grid (oblique, permuted, qform != sform), equal to the slice-by-slice reference, and --prob as a 4-D float32 file', async () => {
    const out = p('out-ct');
    const r = cli('predict', '--weights', p('vol.safetensors'), '--input', p('ct.nii.gz'), '--out', out, '--prob', '--batch', '1', '--threads', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ct: 7 axial slices in [\d.]+ s \([\d.]+ slices\/s\) -> .*ct\.nii\.gz/);
    expect(r.stdout).toMatch(/wrote 1 label volume to /);
    expect(readdirSync(out).sort()).toEqual(['ct.nii.gz', 'ct_prob.nii.gz']);
    // header geometry byte for byte: dim, pixdim, units, qform/sform codes, quaternion and offsets, srow
    expect(geometryBytes(readFileSync(join(out, 'ct.nii.gz')))).toEqual(geometryBytes(readFileSync(p('ct.nii.gz'))));
    const source = await readNifti(p('ct.nii.gz'));
    const labels = await expectOnSourceGrid(join(out, 'ct.nii.gz'), source);

    // a couple of slices against the direct reference, through the canonical order
    const seg = await Segmenter.create(await volumeModel(CT_META, 32, 7), { threads: 1 });
    const { volume: canonicalSource, reorientation } = toCanonical(source);
    const canonical = toCanonicalData(Uint8Array.from(labels.data), reorientation);
    const total = canonicalSource.dims[2];
    for (const k of [1, total - 2]) expect(cutPlane(canonical, canonicalSource.dims, 'axial', k)).toEqual(await referenceSlice(p('ct.nii.gz'), k, seg));
    expect(new Set(labels.data).size).toBeGreaterThan(1);
    await seg.release();

    // probabilities: one float32 volume per class, summing to 1, on the same grid
    const probs = [0, 1, 2].map((c) => readNifti(join(out, 'ct_prob.nii.gz'), { volumeIndex: c }));
    const [p0, p1, p2] = await Promise.all(probs);
    expect(p0!.grid).toEqual(source.grid);
    expect(p0!.datatype).toBe('float32');
    for (let i = 0; i < p0!.data.length; i++) expect(Math.abs(p0!.data[i]! + p1!.data[i]! + p2!.data[i]! - 1)).toBeLessThan(1e-5);
  });

  it('a 4-D file needs --volume-index; with it, that volume is segmented', () => {
    expectCleanFailure(cli('predict', '--weights', p('vol.safetensors'), '--input', p('four-d.nii.gz'), '--out', p('out-4d')), /four-d\.nii\.gz: a 4-D file \(23×19×7×2, 2 volumes\); pick one with --volume-index 0\.\.1/);
    const r = cli('predict', '--weights', p('vol.safetensors'), '--input', p('four-d.nii.gz'), '--out', p('out-4d'), '--volume-index', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(p('out-4d'))).toEqual(['four-d.nii.gz']);
  });

  it.each([
    ['a 2-D model given a volume', () => ['--weights', p('2d.safetensors'), '--input', p('ct.nii.gz')], /2d\.safetensors: a 2-D model \(its metadata has no "volume" entry\), but .*ct\.nii\.gz is a volume/],
    ['no weights given a volume', () => ['--size', '32', '--input', p('ct.nii.gz')], /ct\.nii\.gz: a volume needs --weights of a model trained on volumes/],
    ['a volume model given a PNG', () => ['--weights', p('vol.safetensors'), '--input', p('scan.png')], /vol\.safetensors: a volume model \(trained on CT\/MRI slices\), but .*scan\.png holds 2-D images/],
    ['a truncated .nii.gz', () => ['--weights', p('vol.safetensors'), '--input', p('truncated.nii.gz')], /truncated\.nii\.gz: the gzip stream is truncated/],
  ])('%s: one line, exit 1, nothing written', (_, args, pattern) => {
    const out = p(`out-bad-${Math.random().toString(36).slice(2)}`);
    expectCleanFailure(cli('predict', ...args(), '--out', out), pattern);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  });

  it('a folder: every volume (NIfTI files, nnU-Net channel names), a bad one reported and skipped, exit 1 at the end', () => {
    const folder = p('folder');
    mkdirSync(folder);
    writeFileSync(join(folder, 'case_a_0000.nii.gz'), readFileSync(p('ct.nii.gz')));
    writeFileSync(join(folder, 'case_b_0000.nii.gz'), readFileSync(p('truncated.nii.gz')));
    writeFileSync(join(folder, 'case_c_0000.nii.gz'), readFileSync(p('ct.nii.gz')));
    writeFileSync(join(folder, 'notes.txt'), 'not a volume');
    const out = p('out-folder');
    const r = cli('predict', '--weights', p('vol.safetensors'), '--input', folder, '--out', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/skipped: .*case_b_0000\.nii\.gz: the gzip stream is truncated/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toMatch(/wrote 2 label volumes to .* \(1 skipped\)/);
    expect(readdirSync(out).sort()).toEqual(['case_a.nii.gz', 'case_c.nii.gz']);
  });

  it('Ctrl-C mid-prediction: exit 130, finished cases are whole, nothing half-written or temporary is left', async () => {
    const folder = p('interrupt');
    mkdirSync(folder);
    writeAwkwardCt(join(folder, 'a_small.nii.gz'), [23, 19, 3]);
    writeAwkwardCt(join(folder, 'b_large.nii.gz'), [40, 40, 400]);
    const out = p('out-interrupt');
    const child = spawn(process.execPath, [BIN, 'predict', '--weights', p('vol.safetensors'), '--input', folder, '--out', out, '--prob', '--batch', '1', '--threads', '1']);
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (/a_small: /.test(stdout)) child.kill('SIGINT'); // the first case is written, the second is running
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/interrupted \(SIGINT\)/);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(out).sort()).toEqual(['a_small.nii.gz', 'a_small_prob.nii.gz']);
    expect(noPartials(out)).toEqual([]);
    await readNifti(join(out, 'a_small.nii.gz')); // whole
  });
});

describeWithDataset(
  'totalseg_examples',
  'mobileutr predict on the shared TotalSegmentator CT (NIfTI and DICOM)',
  () => {
    it('example_ct_sm.nii.gz: the label map keeps the header geometry byte for byte', async () => {
      const src = join(datasetPath('totalseg_examples'), 'example_ct_sm.nii.gz');
      const out = p('out-real');
      const r = cli('predict', '--weights', p('vol.safetensors'), '--input', src, '--out', out);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/example_ct_sm: 30 axial slices/);
      expect(geometryBytes(readFileSync(join(out, 'example_ct_sm.nii.gz')))).toEqual(geometryBytes(readFileSync(src)));
      await expectOnSourceGrid(join(out, 'example_ct_sm.nii.gz'), await readNifti(src));
    });

    it('a DICOM series folder: <folder name>.nii.gz on the series grid', async () => {
      const src = join(datasetPath('totalseg_examples'), 'example_ct_dicom');
      const out = p('out-dicom');
      const r = cli('predict', '--weights', p('vol.safetensors'), '--input', src, '--out', out);
      expect(r.code, r.stderr).toBe(0);
      expect(readdirSync(out)).toEqual(['example_ct_dicom.nii.gz']);
      const series = await readDicomSeries(src);
      const back = await expectOnSourceGrid(join(out, 'example_ct_dicom.nii.gz'), series);
      expect(affineDistance(back.affine, series.affine)).toBe(0);
    });
  },
  'example_ct_sm.nii.gz',
);
