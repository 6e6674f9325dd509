// Reproduces the paper's BUSI experiment on one official split: trains MobileUtr with the paper protocol,
// evaluates the best checkpoint on the split's validation set, and (with --torch) runs the PyTorch reference
// (bench/torch/train_busi.py) on the very same decoded pixels with the same protocol, for a side-by-side IoU.
import { mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { scanDataset } from '../src/data/dataset.ts';
import { BatchLoader } from '../src/data/loader.ts';
import { readSplitFile } from '../src/data/split.ts';
import { evaluate } from '../src/eval/evaluate.ts';
import { summaryLines } from '../src/eval/report.ts';
import { loadWeights } from '../src/models/weights.ts';
import { createModel } from '../src/models/model.ts';
import { Segmenter } from '../src/pipeline/segmenter.ts';
import { PAPER_DEFAULTS, type TrainConfig } from '../src/train/config.ts';
import { runTraining } from '../src/train/loop.ts';
import { torchAvailable } from './torch-reference.ts';

const o = new Command()
  .option('--epochs <n>', 'epochs', '40')
  .option('--size <n>', 'input size', '256')
  .option('--split <k>', 'official BUSI split 1, 2 or 3', '1')
  .option('--threads <n>', 'threads for our trainer', '2')
  .option('--torch', 'also train the PyTorch reference with the same protocol on the same pixels')
  .option('--torch-threads <n>', 'threads for the PyTorch reference', '2')
  .option('--out <dir>', 'run folder (default runs/repro-busi-s<split>-<size>-e<epochs>)')
  .option('--reuse', 'continue (or just re-evaluate) the run already in the run folder instead of starting a new one')
  .option('--data <dir>', 'BUSI in the original layout', fileURLToPath(new URL('../../shared/datasets/busi', import.meta.url)))
  .parse()
  .opts();

const epochs = Number(o.epochs);
const size = Number(o.size);
const runDir = o.out ?? join('runs', `repro-busi-s${o.split}-${size}-e${epochs}`);
const splits = join(o.data, 'splits');
const config: TrainConfig = {
  ...PAPER_DEFAULTS,
  data: o.data,
  trainSplit: join(splits, `official_train${o.split}.txt`),
  valSplit: join(splits, `official_val${o.split}.txt`),
  classes: 1,
  epochs,
  size,
  threads: Number(o.threads),
};
console.log(`BUSI official split ${o.split}: MobileUtr, ${epochs} epochs at ${size}x${size}, batch ${config.batch}, SGD ${config.lr} poly, seed ${config.seed} -> ${runDir}`);

const started = performance.now();
const result = await runTraining(runDir, config, {
  resume: Boolean(o.reuse),
  onLog: (line) => console.error(line),
  onEpoch: (r, best) =>
    console.log(
      `epoch ${r.epoch}/${epochs}  loss ${r.train_loss.toFixed(4)}  val IoU ${((r.val_iou ?? NaN) * 100).toFixed(2)}  best ${((best?.iou ?? NaN) * 100).toFixed(2)} (epoch ${best?.epoch})  ${r.images_per_s.toFixed(1)} img/s  ${((performance.now() - started) / 60000).toFixed(1)} min`,
    ),
});
// with --reuse the run may have trained in an earlier invocation: report the epochs' own recorded time then
const trainedMinutes = result.position.history.reduce((t, r) => t + r.seconds, 0) / 60;
const wallMinutes = Math.max((performance.now() - started) / 60000, trainedMinutes);

// the paper reports the best-validation checkpoint, evaluated on the same split
const ds = await scanDataset(o.data);
const valIds = await readSplitFile(config.valSplit!, ds.ids);
const model = createModel('mobileutr', { size });
await loadWeights(model, join(runDir, 'best.safetensors'));
const segmenter = await Segmenter.create(model, { threads: config.threads });
const evaluation = await evaluate(model, segmenter, ds, valIds);
await segmenter.release();
const ours = evaluation.summary.class0!;
console.log(`\nours (best epoch ${result.position.best?.epoch}), ${valIds.length} val images, ${wallMinutes.toFixed(1)} min wall:`);
for (const line of summaryLines(evaluation)) console.log(`  ${line}`);

if (o.torch) {
  if (!torchAvailable()) {
    console.log('PyTorch reference skipped: /usr/bin/python3 cannot import torch (apt-get install python3-torch libopenblas0-pthread)');
  } else {
    // hand PyTorch exactly the pixels our loader produces (sharp decode + bilinear resize), so only the training differs
    const dump = join(runDir, 'torch-data');
    mkdirSync(dump, { recursive: true });
    const loader = new BatchLoader(ds, { size, inChannels: 3, cache: false });
    const index: Record<string, unknown> = { size, channels: 3 };
    for (const [part, file] of [['train', config.trainSplit!], ['val', config.valSplit!]] as const) {
      const ids = await readSplitFile(file, ds.ids);
      const images = new Uint8Array(ids.length * size * size * 3);
      const masks = new Uint8Array(ids.length * size * size);
      for (const [i, id] of ids.entries()) {
        const s = await loader.sample(id);
        images.set(s.image, i * size * size * 3);
        masks.set(s.mask, i * size * size);
      }
      writeFileSync(join(dump, `${part}_images.u8`), images);
      writeFileSync(join(dump, `${part}_masks.u8`), masks);
      index[part] = { count: ids.length, ids, images: `${part}_images.u8`, masks: `${part}_masks.u8` };
    }
    writeFileSync(join(dump, 'index.json'), JSON.stringify(index));
    console.log(`\nPyTorch reference: same protocol, ${epochs} epochs, ${o.torchThreads} threads ...`);
    const script = fileURLToPath(new URL('./torch/train_busi.py', import.meta.url));
    const r = spawnSync('/usr/bin/python3', [script, '--data', dump, '--epochs', String(epochs), '--threads', String(o.torchThreads), '--seed', String(config.seed)], {
      encoding: 'utf8',
      // libgomp's spinning waiters starve each other on a small shared machine
      env: { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' },
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 << 20,
    });
    if (r.status !== 0) console.log(`PyTorch reference failed (exit ${r.status})`);
    else {
      const torch = JSON.parse(r.stdout.trim().split('\n').pop()!);
      const diff = (ours.iou!.mean - torch.best_iou) * 100;
      console.log(`\n                 IoU     Dice    F1      best epoch  wall`);
      console.log(`ours          ${(ours.iou!.mean * 100).toFixed(2).padStart(6)}  ${(ours.dice!.mean * 100).toFixed(2).padStart(6)}  ${(ours.f1!.mean * 100).toFixed(2).padStart(6)}  ${String(result.position.best?.epoch).padStart(10)}  ${wallMinutes.toFixed(1)} min`);
      console.log(`PyTorch       ${(torch.best_iou * 100).toFixed(2).padStart(6)}  ${(torch.best_dice * 100).toFixed(2).padStart(6)}  ${(torch.best_f1 * 100).toFixed(2).padStart(6)}  ${String(torch.best_epoch).padStart(10)}  ${(torch.seconds / 60).toFixed(1)} min`);
      console.log(`IoU difference (ours - PyTorch): ${diff >= 0 ? '+' : ''}${diff.toFixed(2)} points (target: within 1.5)`);
    }
  }
}
