/**
 * Where training batches and validation scores come from: 2-D image/mask pairs, or 2-D slices of volumes. The loop
 * (loop.ts) is the same for both; a source owns the split, the batches (shuffled and augmented from the epoch's
 * rng), the validation score and what the weights file must carry to be used later (volume metadata).
 */
import { join } from 'node:path';
import { scanDataset } from '../data/dataset.ts';
import { BatchLoader } from '../data/loader.ts';
import { makeSplit, readRunSplit, readSplitFile } from '../data/split.ts';
import { SliceLoader, splitCases } from '../data/volume/loader.ts';
import { classTable, volumeMetadata } from '../data/volume/model-meta.ts';
import { scanVolumeDataset } from '../data/volume/dataset.ts';
import { UserError } from '../errors.ts';
import type { TrainConfig } from './config.ts';
import { validateVolumes } from './volume-validation.ts';

import { pairSource } from './pair-source.ts';
import type { TrainingSource } from './sources-types.ts';

export type { TrainBatch, TrainingSource, ValidationScore } from './sources-types.ts';

/**
 * The split of a run: a resumed run keeps the one in its folder (files added since must not move validation data
 * into training), otherwise split files when given, otherwise a seeded random split of `ids`.
 */
async function runSplit(config: TrainConfig, ids: readonly string[], runDir: string, resume: boolean, draw: () => { train: string[]; val: string[] }) {
  if (resume) return { train: await readRunSplit(join(runDir, 'train.txt'), ids, config.data), val: await readRunSplit(join(runDir, 'val.txt'), ids, config.data) };
  if (config.trainSplit || config.valSplit) {
    if (!config.trainSplit || !config.valSplit) throw new UserError('give both --split (train ids) and --val-split (validation ids), or neither');
    return { train: await readSplitFile(config.trainSplit, ids), val: await readSplitFile(config.valSplit, ids) };
  }
  return draw();
}

export async function imageSource(config: TrainConfig, runDir: string, resume: boolean): Promise<TrainingSource> {
  const ds = await scanDataset(config.data);
  const { train, val } = await runSplit(config, ds.ids, runDir, resume, () => makeSplit(ds.ids, config.val, config.seed));
  const maskClasses = ds.classes;
  if (config.classes !== (maskClasses === 1 ? 1 : maskClasses + 1))
    throw new UserError(`${config.data} has ${maskClasses} mask folder(s): the model needs ${maskClasses === 1 ? 1 : maskClasses + 1} output classes, got --classes ${config.classes}`);
  const { size, inChannels } = config;
  // a config.json from before the option existed augmented after resizing
  const loader = new BatchLoader(ds, { size, inChannels, augmentAfterResize: (config.augmentAfterResize as boolean | undefined) ?? true });
  return pairSource(loader, config, { maskClasses, train, val, weightsMetadata: {}, problems: ds.problems });
}

export async function volumeSource(config: TrainConfig, runDir: string, resume: boolean): Promise<TrainingSource> {
  const v = config.volume!;
  const ds = await scanVolumeDataset(config.data);
  const ids = ds.cases.map((c) => c.id);
  const { train, val } = await runSplit(config, ids, runDir, resume, () => splitCases(ds, config.val, config.seed));
  const loader = new SliceLoader(ds, {
    size: config.size,
    intensity: v.intensity,
    axis: v.axis,
    context: v.context,
    memoryBytes: v.memoryMb * 2 ** 20,
    classes: config.classes,
    volumeIndex: v.volumeIndex ?? undefined,
  });
  if (loader.classes !== config.classes) throw new UserError(`${config.data} has ${loader.classes} classes (background included): got --classes ${config.classes}`);
  if (loader.inChannels !== config.inChannels) throw new UserError(`${config.data}: slices have ${loader.inChannels} channels, the run expects ${config.inChannels}`);
  const { classValues, classNames } = classTable(ds.labels, config.classes);
  return {
    kind: 'volumes',
    train,
    val,
    samplesPerEpoch: await loader.sliceTotal(train),
    async *batches(o) {
      for await (const b of loader.batches(train, { batch: o.batch, rng: o.rng, augment: true, dropLast: o.dropLast, skip: o.skip })) yield b;
    },
    async validate(_model, runner) {
      const s = await validateVolumes(loader, val, runner, config.batch);
      return { iou: s.iou, dice: s.dice, f1: s.dice };
    },
    weightsMetadata: volumeMetadata({ intensity: v.intensity, axis: v.axis, context: v.context, classValues, classNames }),
    warnings: ds.problems.map((p) => `${p} (skipped)`),
  };
}

export const trainingSource = (config: TrainConfig, runDir: string, resume: boolean) => (config.volume ? volumeSource(config, runDir, resume) : imageSource(config, runDir, resume));
