// Builds volume datasets from TotalSegmentator's test files (../shared/datasets/totalseg_examples, Apache-2.0), with
// its 117-class maps reduced to the 8 Synapse organs of synapse8_map.json (everything else background):
//
//   npx tsx scripts/make-ct-sample.ts --demo --out samples/ct-mini     # the bundled demo (two interleaved halves of example_ct)
//   npx tsx scripts/make-ct-sample.ts --out runs/totalseg-ct8            # three CT cases for a training run (example_ct, example_ct_sm, the DICOM series)
//
// The label maps are TotalSegmentator's own outputs, not manual annotations: for checking the pipeline, never for
// reporting accuracy.
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Command } from 'commander';
import { encodeLabelNifti, readVolume, type NiftiGrid, type Volume } from '../src/data/volume/index.ts';

const o = new Command()
  .option('--source <dir>', 'totalseg_examples folder', resolve('../shared/datasets/totalseg_examples'))
  .requiredOption('--out <dir>', 'dataset folder to write')
  .option('--demo', 'the small bundled demo: example_ct cropped to the 8 organs, even and odd slices as two cases')
  .parse()
  .opts<{ source: string; out: string; demo?: boolean }>();

const map = JSON.parse(readFileSync(join(o.source, 'synapse8_map.json'), 'utf8')) as { synapse8: Record<string, string>; totalsegmentator_total: Record<string, number> };
// TotalSegmentator value -> Synapse value
const toSynapse = new Map(Object.entries(map.synapse8).map(([value, name]) => [map.totalsegmentator_total[name]!, Number(value)]));

function synapseLabels(seg: Volume): Int16Array {
  return Int16Array.from(seg.data, (v) => toSynapse.get(v) ?? 0);
}

function write(path: string, data: Int16Array | Uint8Array, grid: NiftiGrid, description: string): void {
  writeFileSync(path, gzipSync(encodeLabelNifti(data, grid, description), { level: 9 }));
}

/** Slices k0, k0 + step, ... of a volume's data (i fastest) and the grid that places them. */
function everyOther(data: ArrayLike<number>, grid: NiftiGrid, k0: number, k1: number, start: number, step: number): { data: Int16Array; grid: NiftiGrid } {
  const [nx, ny] = grid.dims;
  const ks: number[] = [];
  for (let k = k0 + start; k < k1; k += step) ks.push(k);
  const out = new Int16Array(nx * ny * ks.length);
  ks.forEach((k, z) => {
    for (let p = 0; p < nx * ny; p++) out[z * nx * ny + p] = data[k * nx * ny + p]!;
  });
  const first = ks[0]!;
  const srow = grid.srow.map((row) => [row[0]!, row[1]!, row[2]! * step, row[3]! + row[2]! * first]);
  const pixdim = [...grid.pixdim];
  pixdim[3] = pixdim[3]! * step;
  if (grid.qformCode !== 0) throw new Error('expected a file without qform (as the TotalSegmentator examples are)');
  return { data: out, grid: { ...grid, dims: [nx, ny, ks.length], srow, pixdim } };
}

mkdirSync(join(o.out, 'images'), { recursive: true });
mkdirSync(join(o.out, 'labels'), { recursive: true });
const labels = Object.fromEntries([['background', 0], ...Object.entries(map.synapse8).map(([value, name]) => [name, Number(value)])]);
const datasetJson = (description: string, cases: number) => ({
  channel_names: { '0': 'CT' },
  labels,
  numTraining: cases,
  file_ending: '.nii.gz',
  name: 'TotalSegmentator examples, 8 Synapse organs',
  description,
  licence: 'Apache-2.0 (TotalSegmentator repository; LICENSE copied here)',
  caveat: "label maps are TotalSegmentator's model outputs, not manual annotations",
});

if (o.demo) {
  const ct = await readVolume(join(o.source, 'example_ct.nii.gz'));
  const seg = await readVolume(join(o.source, 'example_seg_fast_force_split.nii.gz'));
  const lab = synapseLabels(seg);
  const [nx, ny, nz] = ct.grid.dims;
  // the slices holding any of the 8 organs, and 2 more on each side
  let k0 = nz;
  let k1 = 0;
  for (let k = 0; k < nz; k++)
    for (let p = 0; p < nx * ny; p++)
      if (lab[k * nx * ny + p]) {
        k0 = Math.min(k0, k);
        k1 = Math.max(k1, k + 1);
        break;
      }
  k0 = Math.max(0, k0 - 2);
  k1 = Math.min(nz, k1 + 2);
  const hu = Int16Array.from(ct.data, (v) => Math.max(-1024, Math.min(3071, v)));
  for (const [id, start] of [['ct_even', 0], ['ct_odd', 1]] as const) {
    const image = everyOther(hu, ct.grid, k0, k1, start, 2);
    const label = everyOther(lab, seg.grid, k0, k1, start, 2);
    write(join(o.out, 'images', `${id}.nii.gz`), image.data, image.grid, 'CT HU (TotalSegmentator example_ct)');
    write(join(o.out, 'labels', `${id}.nii.gz`), label.data, label.grid, 'Synapse 8 organs (TotalSegmentator model output)');
  }
  writeFileSync(join(o.out, 'train.txt'), 'ct_even\n');
  writeFileSync(join(o.out, 'val.txt'), 'ct_odd\n');
  writeFileSync(join(o.out, 'dataset.json'), `${JSON.stringify(datasetJson(`example_ct.nii.gz slices ${k0}..${k1 - 1}: even slices (ct_even) and odd slices (ct_odd) as two cases at 6 mm`, 2), null, 2)}\n`);
  console.log(`wrote ${o.out}: slices ${k0}..${k1 - 1} of example_ct, ${nx}x${ny}x${Math.ceil((k1 - k0) / 2)} per case`);
} else {
  const cases: [string, string, string][] = [
    ['ct', 'example_ct.nii.gz', 'example_seg_fast_force_split.nii.gz'],
    ['ct_sm', 'example_ct_sm.nii.gz', 'example_seg.nii.gz'],
    ['ct_dicom', 'example_ct_dicom', 'example_seg_dicom.nii.gz'],
  ];
  for (const [id, image, segFile] of cases) {
    if (image.endsWith('.nii.gz')) copyFileSync(join(o.source, image), join(o.out, 'images', `${id}.nii.gz`));
    else symlinkSync(resolve(o.source, image), join(o.out, 'images', id));
    const seg = await readVolume(join(o.source, segFile));
    write(join(o.out, 'labels', `${id}.nii.gz`), synapseLabels(seg), seg.grid, 'Synapse 8 organs (TotalSegmentator model output)');
  }
  writeFileSync(join(o.out, 'dataset.json'), `${JSON.stringify(datasetJson('example_ct, example_ct_sm (its slices 82..111 with another label model) and the DICOM series', 3), null, 2)}\n`);
  console.log(`wrote ${o.out}: ${cases.map((c) => c[0]).join(', ')}`);
}
copyFileSync(join(o.source, 'LICENSE'), join(o.out, 'LICENSE'));
