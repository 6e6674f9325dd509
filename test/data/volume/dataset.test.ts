// Volume datasets: layout detection (nnU-Net v2, images/ + labels/ with NIfTI or DICOM series, 2-D unchanged) and
// `mobileutr check` on them: grids, label values, empty maps, anisotropy, unreadable files, in one pass.
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkDataset } from '../../../src/data/check.ts';
import { detectLayout, scanDataset } from '../../../src/data/dataset.ts';
import { scanVolumeDataset } from '../../../src/data/volume/dataset.ts';
import { readVolume } from '../../../src/data/volume/index.ts';
import { writeSeries } from '../../support/dicom.ts';
import { cli, expectCleanFailure } from '../../reliability/support.ts';
import { phantomSeries } from './phantom.ts';
import { fill, writeSyntheticNifti } from './synthetic.ts';

const DIMS = [6, 5, 4] as [number, number, number];
const image = () => fill(Int16Array, DIMS, (i, j, k) => -100 + 10 * i + j + 50 * k);
const label = (v = 1) => fill(Uint8Array, DIMS, (i, j) => (i >= 2 && i < 4 && j >= 1 && j < 3 ? v : 0));
const json = (labels: Record<string, number>) => JSON.stringify({ channel_names: { 0: 'CT' }, labels, numTraining: 2, file_ending: '.nii.gz' });

let nnunet: string;
let ours: string;
let bad: string;

beforeAll(async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'mobileutr-voldata-'));
  nnunet = join(tmp, 'Dataset001_Test');
  for (const id of ['case_a', 'case_b']) {
    writeSyntheticNifti(join(nnunet, 'imagesTr', `${id}_0000.nii.gz`), { dims: DIMS }, image());
    writeSyntheticNifti(join(nnunet, 'labelsTr', `${id}.nii.gz`), { dims: DIMS }, label());
  }
  writeSyntheticNifti(join(nnunet, 'imagesTs', 'case_t_0000.nii.gz'), { dims: DIMS }, image());
  writeFileSync(join(nnunet, 'dataset.json'), json({ background: 0, organ: 1 }));

  ours = join(tmp, 'ours');
  writeSyntheticNifti(join(ours, 'images', 'n1.nii.gz'), { dims: DIMS }, image());
  writeSyntheticNifti(join(ours, 'labels', 'n1.nii.gz'), { dims: DIMS }, label());
  writeSeries(join(ours, 'images', 'd1'), phantomSeries());
  const series = await readVolume(join(ours, 'images', 'd1'));
  writeSyntheticNifti(join(ours, 'labels', 'd1.nii.gz'), { dims: series.dims, affine: series.affine }, fill(Uint8Array, series.dims, (i) => (i === 3 ? 1 : 0)));

  bad = join(tmp, 'bad');
  const tr = (id: string, data: Int16Array | Float32Array | Uint8Array, g = { dims: DIMS } as Parameters<typeof writeSyntheticNifti>[1]) =>
    writeSyntheticNifti(join(bad, 'imagesTr', `${id}_0000.nii.gz`), g, data);
  const lb = (id: string, data: Int16Array | Float32Array | Uint8Array, g = { dims: DIMS } as Parameters<typeof writeSyntheticNifti>[1]) =>
    writeSyntheticNifti(join(bad, 'labelsTr', `${id}.nii.gz`), g, data);
  tr('good', image()), lb('good', label());
  tr('dims', image()), lb('dims', new Uint8Array(7 * 5 * 4), { dims: [7, 5, 4] });
  tr('shift', image()), lb('shift', label(), { dims: DIMS, origin: [0.01, 0, 0] });
  tr('tiny', image()), lb('tiny', label(), { dims: DIMS, origin: [0.0005, 0, 0] }); // within 1e-3 mm: same grid
  tr('unlisted', image()), lb('unlisted', label(5));
  tr('fraction', image()), lb('fraction', fill(Float32Array, DIMS, (i) => (i === 1 ? 0.5 : 0)));
  tr('floatint', image()), lb('floatint', Float32Array.from(label())); // float32 storage of integer values is fine
  tr('empty', image()), lb('empty', new Uint8Array(6 * 5 * 4));
  tr('thick', image(), { dims: DIMS, spacing: [0.7, 0.7, 5] }), lb('thick', label(), { dims: DIMS, spacing: [0.7, 0.7, 5] });
  tr('trunc', image()), lb('trunc', label());
  writeFileSync(join(bad, 'imagesTr', 'trunc_0000.nii.gz'), Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]));
  tr('nolabel', image());
  lb('noimage', label());
  writeFileSync(join(bad, 'dataset.json'), json({ background: 0, organ: 1, other: 2 }));
});

describe('layout detection', () => {
  it('finds nnU-Net v2: channels, labels from dataset.json, imagesTs', async () => {
    expect(await detectLayout(nnunet)).toBe('nnunet');
    const ds = await scanVolumeDataset(nnunet);
    expect(ds.cases.map((c) => c.id)).toEqual(['case_a', 'case_b']);
    expect(ds.cases[0]!.images).toEqual([join(nnunet, 'imagesTr', 'case_a_0000.nii.gz')]);
    expect(ds.cases[0]!.label).toBe(join(nnunet, 'labelsTr', 'case_a.nii.gz'));
    expect(ds.testCases.map((c) => c.id)).toEqual(['case_t']);
    expect([...ds.labels!]).toEqual([[0, 'background'], [1, 'organ']]);
    expect(ds.channels).toEqual(['CT']);
    expect(ds.problems).toEqual([]);
  });

  it('finds our layout with NIfTI files and DICOM series folders', async () => {
    expect(await detectLayout(ours)).toBe('volumes');
    const ds = await scanVolumeDataset(ours);
    expect(ds.cases.map((c) => [c.id, c.images[0]])).toEqual([
      ['d1', join(ours, 'images', 'd1')],
      ['n1', join(ours, 'images', 'n1.nii.gz')],
    ]);
    expect(ds.problems).toEqual([]);
    // cases linked in from elsewhere (a DICOM folder and a label file)
    const linked = join(ours, '..', 'linked');
    mkdirSync(join(linked, 'images'), { recursive: true });
    mkdirSync(join(linked, 'labels'), { recursive: true });
    symlinkSync(join(ours, 'images', 'd1'), join(linked, 'images', 'd1'));
    symlinkSync(join(ours, 'labels', 'd1.nii.gz'), join(linked, 'labels', 'd1.nii.gz'));
    expect(await detectLayout(linked)).toBe('volumes');
    expect((await scanVolumeDataset(linked)).cases.map((c) => c.id)).toEqual(['d1']);
  });

  it('keeps 2-D folders 2-D, and the 2-D scanner names a volume folder instead of misreading it', async () => {
    expect(await detectLayout(new URL('../../../samples/busi-mini', import.meta.url).pathname)).toBe('2d');
    await expect(scanDataset(nnunet)).rejects.toThrow(/a volume dataset \(nnU-Net layout\)/);
  });

  it('reports channels, labels and images that have no partner', async () => {
    const ds = await scanVolumeDataset(bad);
    expect(ds.problems).toEqual([
      `${join(bad, 'imagesTr', 'nolabel_0000.nii.gz')}: image without label (expected ${join(bad, 'labelsTr', 'nolabel.nii.gz')})`,
      `${join(bad, 'labelsTr', 'noimage.nii.gz')}: label without image (expected ${join(bad, 'imagesTr', 'noimage_0000.nii.gz')})`,
    ]);
  });
});

describe('check on volume datasets', () => {
  it('is clean on good datasets (both layouts, DICOM included)', async () => {
    for (const root of [nnunet, ours]) {
      const r = await checkDataset(root);
      expect(r.findings.filter((f) => f.severity !== 'info'), root).toEqual([]);
      expect(r.usable).toBe(2);
    }
  });

  it('reports every problem in one pass, one line each', async () => {
    const r = await checkDataset(bad);
    const lines = r.findings.map((f) => `${f.severity}: ${f.path.slice(bad.length + 1)}: ${f.message}`);
    expect(lines).toEqual([
      'error: imagesTr/nolabel_0000.nii.gz: image without label (expected ' + join(bad, 'labelsTr', 'nolabel.nii.gz') + ')',
      'error: labelsTr/noimage.nii.gz: label without image (expected ' + join(bad, 'imagesTr', 'noimage_0000.nii.gz') + ')',
      'error: labelsTr/dims.nii.gz: label is 7×5×4 voxels but its image is 6×5×4',
      'warning: labelsTr/dims.nii.gz: empty label map (background only)',
      'warning: labelsTr/empty.nii.gz: empty label map (background only)',
      'error: labelsTr/fraction.nii.gz: 20 voxels are not integers (first: 0.5): a label map holds class values',
      'error: labelsTr/shift.nii.gz: label\'s affine differs from its image\'s by 0.01 mm (tolerance 0.001 mm): not the same grid',
      'info: imagesTr/thick_0000.nii.gz: strongly anisotropic spacing 0.7×0.7×5 mm (ratio 7.1): slice along the finest axes (axial for thick-slice CT)',
      expect.stringMatching(/^error: imagesTr\/trunc_0000\.nii\.gz: .+/),
      'error: labelsTr/unlisted.nii.gz: label value 5 (16 voxels) not in dataset.json (0 background, 1 organ, 2 other)',
    ]);
    expect(r.usable).toBe(5); // good, tiny, floatint, thick, empty (a warning)
    expect(r.counts.error).toBe(7);
  });

  it('runs from the CLI: positional folder, summary line, exit 1 on errors without a stack trace', async () => {
    const ok = await cli(['check', nnunet]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`${nnunet}: nnU-Net dataset, 3 cases, 2 label maps, 2 labels in dataset.json, 2 usable cases: 0 errors, 0 warnings, 0 notes`);
    const r = await cli(['check', bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/trunc_0000\.nii\.gz: /);
    expect(r.stdout + r.stderr).not.toMatch(/\n\s+at /);
    expectCleanFailure(await cli(['check']), /give the dataset folder/);
  });

  it('split writes case ids for a volume dataset', async () => {
    const out = join(nnunet, 'split');
    const r = await cli(['split', '--data', nnunet, '--val', '0.5', '--out', out]);
    expect(r.stdout, r.stderr).toMatch(/^2 cases: 1 in .*train\.txt, 1 in .*val\.txt/);
    const ids = [readFileSync(join(out, 'train.txt'), 'utf8').trim(), readFileSync(join(out, 'val.txt'), 'utf8').trim()].sort();
    expect(ids).toEqual(['case_a', 'case_b']);
  });
});
