// Volume datasets end to end: train (slices, split by case, TransUNet loss), resume mid-epoch equals an uninterrupted
// run, eval per volume (both protocols), and the one-line errors; on a small synthetic nnU-Net dataset made here.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CT_SAMPLE_DATA } from '../../src/cli/train.ts';
import { encodeLabelNifti } from '../../src/data/volume/nifti-write.ts';
import { volumeMetaFrom } from '../../src/data/volume/model-meta.ts';
import { gridFromAffine, type Vec3 } from '../../src/data/volume/volume.ts';
import { readSafetensorsFile } from '../../src/io/safetensors.ts';
import { decodeModel } from '../../src/ir/onnx.ts';
import { PAPER_DEFAULTS, type TrainConfig } from '../../src/train/config.ts';
import { runTraining } from '../../src/train/loop.ts';
import { differingTensors } from '../support/tensors.ts';
import { BIN } from '../support/bin.ts';

const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const tmp = () => mkdtempSync(join(tmpdir(), 'mobileutr-volrun-'));

/** nnU-Net layout, MRI-like: a bright ellipsoid (label 1) with a darker core (label 2), case by case a little shifted. */
function writeDataset(root: string, cases: number, dims: Vec3 = [20, 18, 6]): void {
  for (const d of ['imagesTr', 'labelsTr']) mkdirSync(join(root, d), { recursive: true });
  const [nx, ny, nz] = dims;
  const spacing: Vec3 = [1.2, 1.2, 3];
  const affine = [
    [-1.2, 0, 0, 10],
    [0, 1.2, 0, -5],
    [0, 0, 3, 20],
    [0, 0, 0, 1],
  ];
  const grid = gridFromAffine(dims, affine, spacing);
  for (let c = 0; c < cases; c++) {
    const image = new Int16Array(nx * ny * nz);
    const label = new Uint8Array(nx * ny * nz);
    for (let k = 0; k < nz; k++)
      for (let j = 0; j < ny; j++)
        for (let i = 0; i < nx; i++) {
          const r = ((i - nx / 2 - (c % 3)) / 6) ** 2 + ((j - ny / 2) / 5) ** 2 + ((k - nz / 2) / 2.5) ** 2;
          const at = i + nx * (j + ny * k);
          image[at] = 100 + ((i * 7 + j * 3 + k * 5 + c) % 11) + (r < 1 ? (r < 0.3 ? 300 : 600) : 0);
          label[at] = r < 1 ? (r < 0.3 ? 2 : 1) : 0;
        }
    const id = `case_${String(c).padStart(3, '0')}`;
    writeFileSync(join(root, 'imagesTr', `${id}_0000.nii.gz`), gzipSync(encodeLabelNifti(image, grid)));
    writeFileSync(join(root, 'labelsTr', `${id}.nii.gz`), gzipSync(encodeLabelNifti(label, grid)));
  }
  writeFileSync(join(root, 'dataset.json'), JSON.stringify({ channel_names: { '0': 'T1' }, labels: { background: 0, rim: 1, core: 2 }, numTraining: cases, file_ending: '.nii.gz' }));
}

const volumeConfig = (data: string, over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...PAPER_DEFAULTS,
  data,
  trainSplit: null,
  valSplit: null,
  val: 0.25,
  classes: 3,
  inChannels: 1,
  size: 32,
  batch: 4,
  epochs: 2,
  threads: 1,
  seed: 1234,
  volume: { intensity: { kind: 'mri' }, axis: 'axial', context: 0, memoryMb: 16, volumeIndex: null },
  ...over,
});

describe('training and evaluation on volumes', () => {
  it('trains slice by slice, split by case; resume mid-epoch equals an uninterrupted run', async () => {
    const data = tmp();
    writeDataset(data, 4);
    const straight = tmp();
    const a = await runTraining(straight, volumeConfig(data));
    expect(a.status).toBe('finished');
    const train = readFileSync(join(straight, 'train.txt'), 'utf8').trim().split('\n');
    const val = readFileSync(join(straight, 'val.txt'), 'utf8').trim().split('\n');
    // case ids, never slices; no case on both sides
    expect([...train, ...val].sort()).toEqual(['case_000', 'case_001', 'case_002', 'case_003']);
    expect(val).toHaveLength(1);
    // 3 training cases x 6 axial slices = 18 slices, batch 4: 5 steps per epoch (the last of 2 slices)
    const records = readFileSync(join(straight, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => r.step)).toEqual([5, 10]);
    expect(records.every((r) => Number.isFinite(r.train_loss) && r.val_dice >= 0 && r.val_dice <= 1)).toBe(true);
    const meta = volumeMetaFrom((await readSafetensorsFile(join(straight, 'best.safetensors'))).metadata, 'best');
    expect(meta).toEqual({ intensity: { kind: 'mri' }, axis: 'axial', context: 0, classValues: [0, 1, 2], classNames: ['background', 'rim', 'core'] });

    const split = tmp();
    expect((await runTraining(split, volumeConfig(data), { maxSteps: 3 })).position).toMatchObject({ epoch: 0, batchInEpoch: 3 });
    const b = await runTraining(split, volumeConfig(data), { resume: true });
    expect(b.status).toBe('finished');
    expect(differingTensors(b.model.weights, a.model.weights)).toEqual([]);
    expect(b.position.history.map((r) => r.train_loss)).toEqual(a.position.history.map((r) => r.train_loss));
    expect(b.position.history.map((r) => r.val_dice)).toEqual(a.position.history.map((r) => r.val_dice));
  }, 300_000);

  it('the CLI: train picks the intensity from dataset.json, eval scores per volume in mm or as TransUNet does', () => {
    const data = tmp();
    writeDataset(data, 3);
    const run = join(tmp(), 'run');
    const t = cli('train', '--data', data, '--size', '32', '--epochs', '1', '--batch', '8', '--val', '0.34', '--threads', '1', '--out', run);
    expect(t.code, t.stderr).toBe(0);
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as TrainConfig;
    // channel "T1" is not CT: per-volume percentile clip + z-score; TransUNet's seed when none is given
    expect(config.volume).toMatchObject({ intensity: { kind: 'mri' }, axis: 'axial', context: 0 });
    expect(config.seed).toBe(1234);

    for (const protocol of ['mm', 'transunet']) {
      const out = join(tmp(), protocol);
      const e = cli('eval', '--data', data, '--weights', join(run, 'best.safetensors'), '--protocol', protocol, '--threads', '1', '--out', out);
      expect(e.code, e.stderr).toBe(0);
      expect(e.stdout).toMatch(protocol === 'mm' ? /HD95 \(mm\)/ : /HD95 \(voxels, TransUNet\)/);
      const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
      expect(summary.protocol).toBe(protocol);
      expect(summary.cases).toEqual(['case_000', 'case_001', 'case_002']);
      expect(summary.classes.map((c: { name: string }) => c.name)).toEqual(['rim', 'core']);
      const rows = readFileSync(join(out, 'per_case.csv'), 'utf8').trim().split('\n');
      expect(rows).toHaveLength(1 + 3 * 2);
      expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('core');
    }

    // export keeps the volume metadata in the ONNX metadata_props (the browser app reads it there)
    const onnxPath = join(tmp(), 'model.onnx');
    const x = cli('export', '--weights', join(run, 'best.safetensors'), '--out', onnxPath);
    expect(x.code, x.stderr).toBe(0);
    const props = Object.fromEntries(decodeModel(readFileSync(onnxPath)).metadataProps.map((p) => [p.key, p.value]));
    expect(volumeMetaFrom(props as Record<string, string>, onnxPath)).toMatchObject({ classNames: ['background', 'rim', 'core'], intensity: { kind: 'mri' } });
  }, 300_000);

  it('one-line errors: a 2-D model on volumes, a bad protocol, --window with --intensity', () => {
    const data = tmp();
    writeDataset(data, 2);
    const twoD = cli('eval', '--data', data, '--out', join(tmp(), 'e'));
    expect(twoD.code).toBe(1);
    expect(twoD.stderr).toMatch(/not trained on volumes/);
    expect(twoD.stderr).not.toMatch(/\n\s+at /);
    const protocol = cli('eval', '--data', data, '--protocol', 'nnunet', '--out', join(tmp(), 'e'));
    expect(protocol.code).toBe(1);
    expect(protocol.stderr).toMatch(/--protocol must be mm or transunet|not trained on volumes/);
    const both = cli('train', '--data', data, '--window', '40,400', '--intensity', 'ct', '--out', join(tmp(), 'r'));
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/--window or --intensity, not both/);
  }, 120_000);

  it('train --demo ct runs on the bundled CT', () => {
    const run = join(tmp(), 'demo');
    const r = cli('train', '--demo', 'ct', '--epochs', '1', '--size', '32', '--threads', '1', '--out', run);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(CT_SAMPLE_DATA);
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as TrainConfig;
    expect(config.classes).toBe(9);
    expect(config.volume?.intensity).toEqual({ kind: 'ct' });
    expect(readFileSync(join(run, 'train.txt'), 'utf8').trim()).toBe('ct_even');
  }, 300_000);
});
