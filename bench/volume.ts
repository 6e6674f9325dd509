// Whole-volume prediction benchmark: a CT volume segmented slice by slice (src/pipeline/volume.ts, the path of
// `mobileutr predict` on a NIfTI) with onnxruntime-node at 1 and 2 threads, then PyTorch slice-wise inference of
// the same network on the same slices (bench/torch/volume.py), measured one after the other in the same run.
//
//   npm run bench:volume                                   # example_ct.nii.gz (122×101×112), MobileUtr 256
//   npm run bench:volume -- --input case.nii.gz --size 224 --threads 2 --runs 3
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { readVolume } from '../src/data/volume/index.ts';
import { intensityMap, quantize } from '../src/data/volume/intensity.ts';
import type { VolumeModelMeta } from '../src/data/volume/model-meta.ts';
import { toCanonical } from '../src/data/volume/orientation.ts';
import { createModel } from '../src/models/model.ts';
import { Segmenter } from '../src/pipeline/segmenter.ts';
import { segmentVolume } from '../src/pipeline/volume.ts';
import { PYTHON, torchAvailable } from './torch-reference.ts';

const DATASETS = process.env.MOBILEUTR_DATASETS ? resolve(process.env.MOBILEUTR_DATASETS) : fileURLToPath(new URL('../../shared/datasets', import.meta.url));

const opts = new Command()
  .option('--input <path>', 'a CT volume (.nii/.nii.gz or a DICOM series folder)', join(DATASETS, 'totalseg_examples', 'example_ct.nii.gz'))
  .option('--model <name>', 'model', 'mobileutr')
  .option('--size <n>', 'network input size', '256')
  .option('--classes <n>', 'classes (Synapse: 8 organs + background)', '9')
  .option('--threads <list>', 'comma-separated thread counts', '1,2')
  .option('--batch <n>', 'slices per network run (both sides)', '4')
  .option('--runs <n>', 'timed volumes per setting (median)', '1')
  .option('--no-torch', 'skip the PyTorch reference')
  .parse()
  .opts();

const size = Number(opts.size);
const classes = Number(opts.classes);
const batch = Number(opts.batch);
const runs = Number(opts.runs);
const threadCounts = String(opts.threads).split(',').map(Number);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const meta: VolumeModelMeta = {
  intensity: { kind: 'ct' },
  axis: 'axial',
  context: 0,
  classValues: Array.from({ length: classes }, (_, k) => k),
  classNames: Array.from({ length: classes }, (_, k) => (k ? `class ${k}` : 'background')),
};

let t = performance.now();
const volume = await readVolume(opts.input);
const readSeconds = (performance.now() - t) / 1000;
const slices = toCanonical(volume).volume.dims[2];
const torchNote = !opts.torch ? 'skipped (--no-torch)' : torchAvailable() ? 'yes, measured after ours' : 'skipped: /usr/bin/python3 has no torch (apt-get install python3-torch libopenblas0-pthread)';
console.log(`${opts.input}: ${volume.dims.join('×')} voxels, ${slices} axial slices; read in ${readSeconds.toFixed(2)} s (not counted below)`);
console.log(`${opts.model} ${size}x${size}, ${classes} classes, batch ${batch}, ${runs} timed volume(s) per setting (median); PyTorch reference: ${torchNote}`);

const model = createModel(opts.model, { size, inChannels: 1, classes });
const ours = new Map<number, { seconds: number; networkMs: number }>();
for (const threads of threadCounts) {
  const seg = await Segmenter.create(model, { threads });
  // warm-up, untimed: the first slices of the volume through the whole path (ORT's first runs, V8's JIT)
  const [nx, ny, nz] = volume.dims;
  const head = { ...volume, dims: [nx, ny, Math.min(nz, 2 * batch)] as typeof volume.dims, data: volume.data.subarray(0, nx * ny * Math.min(nz, 2 * batch)) };
  await segmentVolume(seg, model.options, head, meta, { batch });
  const seconds: number[] = [];
  const network: number[] = [];
  for (let r = 0; r < runs; r++) {
    const out = await segmentVolume(seg, model.options, volume, meta, { batch });
    seconds.push(out.timing.totalMs / 1000);
    network.push(out.timing.inferenceMs);
  }
  ours.set(threads, { seconds: median(seconds), networkMs: median(network) });
  await seg.release();
}

// PyTorch after ours, never at the same time: the canonical 8-bit volume our pipeline slices, handed over raw
const torch = new Map<number, { seconds_per_volume: number; network_ms: number }>();
if (opts.torch && torchAvailable()) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-volume-'));
  try {
    const canonical = toCanonical(volume).volume;
    const map = intensityMap(canonical.data, meta.intensity);
    writeFileSync(join(dir, 'ct.u8'), quantize(canonical.data, map));
    for (const threads of threadCounts) {
      const args = [
        fileURLToPath(new URL('./torch/volume.py', import.meta.url)),
        ...['--raw', join(dir, 'ct.u8'), '--dims', canonical.dims.join(','), '--model', opts.model, '--size', String(size), '--classes', String(classes)],
        ...['--scale', String(map.scale), '--offset', String(map.offset), '--threads', String(threads), '--batch', String(batch), '--runs', String(runs)],
      ];
      const r = spawnSync(PYTHON, args, { encoding: 'utf8', timeout: 1_800_000 });
      if (r.status !== 0) console.log(`  PyTorch reference failed (${threads} threads): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
      else torch.set(threads, JSON.parse(r.stdout.trim().split('\n').pop()!));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log('threads  ours s/volume  ours slices/s  ours network s  torch s/volume  torch slices/s  torch network s  torch/ours');
for (const threads of threadCounts) {
  const o = ours.get(threads)!;
  const p = torch.get(threads);
  console.log(
    [
      String(threads).padStart(7),
      o.seconds.toFixed(2).padStart(14),
      (slices / o.seconds).toFixed(1).padStart(14),
      (o.networkMs / 1000).toFixed(2).padStart(15),
      (p?.seconds_per_volume.toFixed(2) ?? '-').padStart(15),
      (p ? (slices / p.seconds_per_volume).toFixed(1) : '-').padStart(15),
      (p ? (p.network_ms / 1000).toFixed(2) : '-').padStart(16),
      (p ? `${(p.seconds_per_volume / o.seconds).toFixed(2)}x` : '-').padStart(11),
    ].join(' '),
  );
}
