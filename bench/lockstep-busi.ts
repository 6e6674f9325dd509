// Ours and the PyTorch reference in lockstep: the same initial weights (PyTorch's seeded init, loaded into ours), the
// same BUSI images in the same fixed order, no augmentation and no DropPath, the official loss, SGD and lr timing.
// The two trajectories may then differ only by float32 rounding, so a step where the losses part by more than
// rounding can explain points at a real difference, and the step says where to look.
//
//   npm run bench:lockstep                                  # split 1, 128x128, one epoch (57 steps)
//   npm run bench:lockstep -- --steps 114 --size 64
//
// How to read it: the first step's loss must agree to ~1e-6 (same weights, same batch). After that, rounding
// differences grow through every step (SGD with momentum and BatchNorm is chaotic), typically ~1e-5 after a few
// steps and ~1e-2 after an epoch; the validation IoU after the steps should then agree within a point or so. A
// difference of 1e-4 or more at step 2 is not rounding: that is how a MaxPool gradient that gave tied maxima the
// full gradient each showed up (2026-12-07: 2e-4 at step 2; 4e-7 after the fix).
// Needs Debian's python3-torch, libopenblas0-pthread and python3-opencv (reference only).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { scanDataset } from '../src/data/dataset.ts';
import { BatchLoader } from '../src/data/loader.ts';
import { readSplitFile } from '../src/data/split.ts';
import { scoreSamples } from '../src/eval/score-samples.ts';
import { createModel } from '../src/models/model.ts';
import { loadWeights } from '../src/models/weights.ts';
import { afterStep, poly } from '../src/optim/schedules.ts';
import { Segmenter } from '../src/pipeline/segmenter.ts';
import { createTrainer } from '../src/train/trainer.ts';
import { PYTHON } from './torch-reference.ts';

const o = new Command()
  .description('our trainer and the PyTorch reference, step by step from the same weights on the same fixed batches')
  .option('--data <dir>', 'BUSI in the original layout, with splits/official_{train,val}<k>.txt', process.env.MOBILEUTR_DATASETS ? join(process.env.MOBILEUTR_DATASETS, 'busi') : fileURLToPath(new URL('../../shared/datasets/busi', import.meta.url)))
  .option('--split <k>', 'official split', '1')
  .option('--size <n>', 'input size', '128')
  .option('--steps <n>', 'optimizer steps (the split order repeats after an epoch)', '57')
  .option('--schedule-epochs <n>', 'the poly schedule spans this many epochs (as in repro:busi)', '20')
  .option('--threads <n>', 'threads of each side', '2')
  .option('--seed <n>', 'seed of the PyTorch initialisation', '41')
  .parse()
  .opts();

const fail = (msg: string): never => {
  console.error(`bench:lockstep: ${msg}`);
  process.exit(2);
};
const int = (name: string, v: string, min: number) => {
  const n = Number(v);
  return Number.isInteger(n) && n >= min ? n : fail(`--${name} must be an integer >= ${min}, got ${v}`);
};
const size = int('size', o.size, 16);
const steps = int('steps', o.steps, 1);
const threads = int('threads', o.threads, 1);
if (size % 16) fail(`--size must be a multiple of 16, got ${size}`);
const batch = 8;
const trainSplit = join(o.data, 'splits', `official_train${o.split}.txt`);
const valSplit = join(o.data, 'splits', `official_val${o.split}.txt`);
const ds = await scanDataset(o.data).catch((e: Error) => fail(e.message));
const [train, val] = await Promise.all([readSplitFile(trainSplit, ds.ids), readSplitFile(valSplit, ds.ids)]).catch((e: Error) => fail(e.message));
const scheduleSteps = Math.ceil(train.length / batch) * int('schedule-epochs', o.scheduleEpochs, 1);

const dir = mkdtempSync(join(tmpdir(), 'mobileutr-lockstep-'));
const init = join(dir, 'init.safetensors');
console.log(`BUSI split ${o.split}, ${size}x${size}, ${steps} steps of batch ${batch} in the split's order (no augmentation, no DropPath), poly over ${scheduleSteps} steps, ${threads} threads; PyTorch first, then ours from its initial weights`);
const py = spawnSync(PYTHON, [fileURLToPath(new URL('./torch/lockstep_busi.py', import.meta.url)), '--dataset', o.data, '--train-split', trainSplit, '--val-split', valSplit, '--init-out', init, '--size', String(size), '--steps', String(steps), '--schedule-steps', String(scheduleSteps), '--threads', String(threads), '--seed', String(o.seed)], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
if (py.status !== 0) fail(`the PyTorch side failed (needs python3-torch and python3-opencv): ${(py.stderr || py.error?.message || '').trim().split('\n').pop()}`);
const torch = JSON.parse(py.stdout.trim().split('\n').pop()!) as { losses: number[]; lrs: number[]; val_iou: number };

const model = createModel('mobileutr', { size, inChannels: 3, classes: 1 });
await loadWeights(model, init);
rmSync(dir, { recursive: true, force: true });
const trainer = createTrainer(model, { threads, dropPathRate: 0 });
const loader = new BatchLoader(ds, { size, inChannels: 3 });
const lr = afterStep(poly({ base: 0.01, total: scheduleSteps }));
const ours: number[] = [];
const lrs: number[] = [];
while (ours.length < steps) {
  for await (const b of loader.batches(train, { batch })) {
    if (ours.length >= steps) break;
    lrs.push(lr(trainer.stepCount));
    const r = await trainer.step({ data: b.images, dims: [b.n, 3, size, size] }, { data: b.targets, dims: [b.n, 1, size, size] }, lrs.at(-1)!);
    if (r.nonFinite) fail(`non-finite loss or gradient at step ${ours.length + 1}`);
    ours.push(r.loss);
  }
}
await trainer.release();
const segmenter = await Segmenter.create(model, { threads });
const valIou = (await scoreSamples(model, segmenter, 1, val, (id) => loader.sample(id))).summary.class0!.iou!.mean!;
await segmenter.release();

const lrMismatch = lrs.findIndex((v, i) => Math.abs(v - torch.lrs[i]!) > 1e-9 * v);
if (lrMismatch >= 0) fail(`the learning rates differ at step ${lrMismatch + 1}: ours ${lrs[lrMismatch]}, PyTorch ${torch.lrs[lrMismatch]}`);
const rel = ours.map((v, i) => Math.abs(v - torch.losses[i]!) / Math.abs(torch.losses[i]!));
console.log('\n step  PyTorch loss   ours loss  relative difference');
const shown = new Set([...Array(Math.min(steps, 10)).keys(), ...[...Array(steps).keys()].filter((i) => (i + 1) % 10 === 0), steps - 1]);
for (const i of [...shown].sort((a, b) => a - b)) console.log(`${String(i + 1).padStart(5)}  ${torch.losses[i]!.toFixed(6).padStart(12)}  ${ours[i]!.toFixed(6).padStart(10)}  ${rel[i]!.toExponential(2).padStart(19)}`);
const firstApart = rel.findIndex((r) => r > 1e-5);
console.log(`\nfirst step: ${rel[0]!.toExponential(2)} (same weights and batch: rounding only)`);
if (steps > 1) console.log(`step 2: ${rel[1]!.toExponential(2)} (one update apart: above ~1e-5 is not rounding)`);
console.log(`first step apart by more than 1e-5: ${firstApart < 0 ? 'none' : firstApart + 1}`);
console.log(`validation IoU after ${steps} steps (${val.length} images): PyTorch ${(torch.val_iou * 100).toFixed(2)}, ours ${(valIou * 100).toFixed(2)}`);
