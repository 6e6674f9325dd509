// The runs of a comparison: datasets × models × splits, each a normal training run folder under the comparison's
// folder, and where each one stands (new, interrupted, finished) so that a comparison resumes where it stopped.
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { UserError } from '../errors.ts';

export interface DatasetRef {
  name: string;
  dir: string;
}

/** Where a split's ids come from: the dataset's published split files, or a seeded random split. */
export type SplitSource = { kind: 'files'; train: string; val: string } | { kind: 'seeded'; seed: number };

export interface PlannedRun {
  dataset: DatasetRef;
  model: string;
  split: number;
  splitSource: SplitSource;
  dir: string;
}

export type RunState = 'new' | 'interrupted' | 'finished';

/** `name=dir` or a bare folder (named after its last path part). */
export function parseDataset(spec: string): DatasetRef {
  const eq = spec.indexOf('=');
  const dir = resolve(eq > 0 ? spec.slice(eq + 1) : spec);
  const name = eq > 0 ? spec.slice(0, eq) : basename(dir);
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new UserError(`--data ${spec}: the name "${name}" may only hold letters, digits, '.', '_' and '-' (it names a folder)`);
  if (!existsSync(dir)) throw new UserError(`--data ${spec}: ${dir} does not exist`);
  return { name, dir };
}

/**
 * Split k of a dataset: `splits/official_train<k>.txt` + `official_val<k>.txt` when the dataset ships them (BUSI's
 * published splits), else a random split seeded with `seed + k - 1`.
 */
export function splitSource(dataset: DatasetRef, k: number, seed: number): SplitSource {
  const train = join(dataset.dir, 'splits', `official_train${k}.txt`);
  const val = join(dataset.dir, 'splits', `official_val${k}.txt`);
  return existsSync(train) && existsSync(val) ? { kind: 'files', train, val } : { kind: 'seeded', seed: seed + k - 1 };
}

export function planRuns(out: string, datasets: readonly DatasetRef[], models: readonly string[], splits: readonly number[], seed: number): PlannedRun[] {
  const names = new Set<string>();
  for (const d of datasets) {
    if (names.has(d.name)) throw new UserError(`two datasets are named ${d.name}: name them with --data name=dir`);
    names.add(d.name);
  }
  return datasets.flatMap((dataset) =>
    models.flatMap((model) => splits.map((split) => ({ dataset, model, split, splitSource: splitSource(dataset, split, seed), dir: join(out, dataset.name, model, `split${split}`) }))),
  );
}

export interface EpochLine {
  epoch: number;
  val_iou: number | null;
  val_dice: number | null;
  val_f1: number | null;
  seconds: number;
}

/** The epochs a run folder has recorded (metrics.jsonl), oldest first; [] when there are none. */
export function recordedEpochs(dir: string): EpochLine[] {
  const path = join(dir, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as EpochLine);
}

/** Finished: the last recorded epoch is the last of the schedule; interrupted: a resume checkpoint exists. */
export function runState(dir: string, epochs: number): RunState {
  const lines = recordedEpochs(dir);
  if (lines.length > 0 && lines[lines.length - 1]!.epoch >= epochs && existsSync(join(dir, 'best.safetensors'))) return 'finished';
  return existsSync(join(dir, 'resume.safetensors')) && existsSync(join(dir, 'config.json')) ? 'interrupted' : 'new';
}

/** The epoch with the best validation IoU (the official checkpoint choice) and its scores. */
export function bestEpoch(dir: string): { epoch: number; iou: number; dice: number; f1: number } {
  let best: EpochLine | undefined;
  for (const l of recordedEpochs(dir)) if (l.val_iou !== null && (best === undefined || l.val_iou > best.val_iou!)) best = l;
  if (!best) throw new UserError(`${dir}/metrics.jsonl has no validated epoch`);
  return { epoch: best.epoch, iou: best.val_iou!, dice: best.val_dice!, f1: best.val_f1! };
}
