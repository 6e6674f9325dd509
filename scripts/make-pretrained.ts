// Turns a finished training run into the bundled pretrained weights: pretrained/<model>-<name>.safetensors with the
// dataset, citation, licence, schedule and validation scores in its metadata, and the .onnx export beside it.
//   npx tsx scripts/make-pretrained.ts --run runs/pretrained-busi --name busi
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { writeWhole } from '../src/io/write-whole.ts';
import { loadModel } from '../src/models/load.ts';
import { PRETRAINED, PRETRAINED_DIR } from '../src/models/pretrained.ts';
import { saveWeights } from '../src/models/weights.ts';
import { exportOnnx } from '../src/pipeline/export.ts';
import { VERSION } from '../src/cli/version.ts';
import type { TrainConfig } from '../src/train/config.ts';

const o = new Command().requiredOption('--run <dir>', 'a finished training run folder').requiredOption('--name <name>', `one of ${[...PRETRAINED.keys()].join(', ')}`).parse().opts<{ run: string; name: string }>();
const entry = PRETRAINED.get(o.name);
if (!entry) throw new Error(`unknown pretrained name ${o.name}`);
const config = JSON.parse(readFileSync(join(o.run, 'config.json'), 'utf8')) as TrainConfig;
const epochs = readFileSync(join(o.run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; val_iou: number; val_dice: number; val_f1: number });
if (epochs.length !== config.epochs) throw new Error(`${o.run} is not finished: ${epochs.length} of ${config.epochs} epochs`);
const best = epochs.reduce((a, e) => (e.val_iou > a.val_iou ? e : a));
const model = await loadModel({ weights: join(o.run, 'best.safetensors') });
if (model.name !== entry.model) throw new Error(`${o.run} trained ${model.name}, not ${entry.model}`);
const rel = (p: string | null) => (p ? p.replace(/^.*\/datasets\//, '<datasets>/') : 'seeded split');
const metadata: Record<string, string> = {
  pretrained: entry.name,
  dataset: entry.dataset,
  citation: entry.citation,
  licence: entry.licence,
  schedule: `${config.epochs} epochs at ${config.size}x${config.size}, batch ${config.batch}, ${config.optimizer} lr ${config.lr} ${config.schedule}, momentum ${config.momentum}, weight decay ${config.weightDecay}, seed ${config.seed} (the paper's protocol otherwise; the paper trains 300 epochs at 256x256)`,
  train_split: rel(config.trainSplit),
  val_split: rel(config.valSplit),
  epoch: String(best.epoch),
  val_iou: String(best.val_iou),
  val_dice: String(best.val_dice),
  val_f1: String(best.val_f1),
  trained_with: `mobileutr ${VERSION}`,
};
const stem = join(PRETRAINED_DIR, entry.file.replace(/\.safetensors$/, ''));
await saveWeights(model, `${stem}.safetensors`, metadata);
await writeWhole(`${stem}.onnx`, await exportOnnx(model, { metadata }));
console.log(`wrote ${stem}.safetensors and ${stem}.onnx: ${model.name} ${config.size}x${config.size}, epoch ${best.epoch}, val IoU ${(100 * best.val_iou).toFixed(2)}, Dice ${(100 * best.val_dice).toFixed(2)}`);
