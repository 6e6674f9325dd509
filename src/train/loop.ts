import { appendFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeSplitFile } from '../data/split.ts';
import { UserError } from '../errors.ts';
import { createModel, type SegmentationModel } from '../models/model.ts';
import { saveWeights } from '../models/weights.ts';
import { adamW, sgd } from '../optim/optimizers.ts';
import { afterStep, constant, cosine, poly, type Schedule } from '../optim/schedules.ts';
import { Segmenter } from '../pipeline/segmenter.ts';
import { Rng } from '../util/rng.ts';
import { loadResume, saveResume, type RunPosition } from './checkpoint.ts';
import type { TrainConfig } from './config.ts';
import { writeCurvesPng, type EpochRecord } from './curves.ts';
import { trainingSource } from './sources.ts';
import { createTrainer, type Trainer } from './trainer.ts';
import { transunetLoss } from '../nn/losses.ts';

export interface TrainEvents {
  /** After every optimizer step. */
  onStep?(s: { epoch: number; batch: number; batches: number; loss: number; lr: number; imagesPerS: number }): void;
  /** After every epoch, with its record. */
  onEpoch?(r: EpochRecord, best: RunPosition['best']): void;
  onLog?(line: string): void;
}

export interface TrainRunOptions extends TrainEvents {
  resume?: boolean;
  /** Stops cleanly (after the current step, saving a checkpoint) once aborted: Ctrl-C. */
  signal?: AbortSignal;
  /** Stop after this many optimizer steps in this invocation (tests, quick looks); saves like an interruption. */
  maxSteps?: number;
}

export interface TrainRunResult {
  status: 'finished' | 'interrupted';
  position: RunPosition;
  model: SegmentationModel;
}

/** The epoch's shuffling and augmentation randomness depends only on (seed, epoch): resuming mid-run is exact. */
const epochRng = (seed: number, epoch: number) => new Rng((seed * 1_000_003 + epoch * 7_919 + 17) >>> 0);

/** The lr of every optimizer step: the schedule over epochs × steps per epoch, with the original timing (afterStep). */
function makeSchedule(config: TrainConfig, stepsPerEpoch: number): Schedule {
  const o = { base: config.lr, total: Math.max(1, config.epochs * stepsPerEpoch), warmup: Math.round(config.warmupEpochs * stepsPerEpoch) };
  return afterStep(config.schedule === 'cosine' ? cosine(o) : config.schedule === 'constant' ? constant(o) : poly(o));
}

/**
 * Batches (micro-batches with --accumulate) and optimizer steps per epoch. The original keeps the last, smaller
 * batch (BUSI: 452 images, batch 8 -> 57, the last of 4) and so the last, incomplete accumulation group;
 * `dropLast` drops both.
 */
export function epochPlan(images: number, batch: number, accumulate: number, dropLast: boolean): { batches: number; steps: number } {
  if (dropLast) {
    const steps = Math.floor(Math.floor(images / batch) / accumulate);
    return { batches: steps * accumulate, steps };
  }
  const batches = Math.ceil(images / batch);
  return { batches, steps: Math.ceil(batches / accumulate) };
}

function makeTrainer(model: SegmentationModel, config: TrainConfig): Trainer {
  const optimizer =
    config.optimizer === 'adamw'
      ? adamW({ weightDecay: config.weightDecay })
      : sgd({ momentum: config.momentum, weightDecay: config.weightDecay });
  return createTrainer(model, {
    optimizer,
    threads: config.threads,
    seed: config.seed,
    accumulate: config.accumulate,
    dropPathRate: config.dropPath ?? undefined,
    // volumes: TransUNet's 0.5·CE + 0.5·Dice; images: the paper's (BCE or CE) + Dice
    loss: config.volume ? (b, logits, target) => transunetLoss(b, logits, target) : undefined,
  });
}

const CSV_FIELDS: (keyof EpochRecord)[] = ['epoch', 'step', 'lr', 'train_loss', 'grad_norm', 'val_iou', 'val_dice', 'val_f1', 'images_per_s', 'seconds', 'skipped_batches'];

/**
 * Trains a model in `runDir` with `config` (or resumes the run there); see TrainConfig for the protocol. Writes
 * best/last weights, an atomic resume checkpoint, metrics.csv and curves.png; `signal` stops it cleanly. Exported
 * from the package as `train`.
 *
 * @example
 * ```ts
 * const ctrl = new AbortController();
 * process.once('SIGINT', () => ctrl.abort());
 * const config = { ...PAPER_DEFAULTS, data: 'my-data', classes: 1 };
 * const run = await train('runs/exp1', config, { signal: ctrl.signal });
 * if (run.status === 'interrupted') await train('runs/exp1', config, { resume: true }); // continues exactly
 * ```
 */
export async function runTraining(runDir: string, config: TrainConfig, o: TrainRunOptions = {}): Promise<TrainRunResult> {
  const log = o.onLog ?? (() => undefined);
  sharp.concurrency(Math.max(1, config.workers));
  const source = await trainingSource(config, runDir, o.resume === true);
  for (const w of source.warnings) log(`warning: ${w}`);
  const { train, val } = source;
  const samples = source.kind === 'volumes' ? 'slices' : 'images';
  // a config.json from before the option existed: that run dropped the last batch, and keeps doing so
  const dropLast = (config.dropLast as boolean | undefined) ?? true;
  const { batches: batchesPerEpoch, steps: stepsPerEpoch } = epochPlan(source.samplesPerEpoch, config.batch, config.accumulate, dropLast);
  if (source.samplesPerEpoch < config.batch || stepsPerEpoch < 1)
    throw new UserError(`${source.samplesPerEpoch} training ${samples} are fewer than one batch of ${dropLast ? `${config.batch}x${config.accumulate}` : config.batch}: lower --batch`);
  if (source.kind === 'volumes' && val.length === 0) throw new UserError(`no validation ${source.kind === 'volumes' ? 'cases' : 'images'}: raise --val or give --val-split`);

  await mkdir(runDir, { recursive: true });
  const model = createModel(config.model, { size: config.size, inChannels: config.inChannels, classes: config.classes, seed: config.seed });
  const trainer = makeTrainer(model, config);
  let position: RunPosition = { epoch: 0, batchInEpoch: 0, best: null, history: [], partial: { lossSum: 0, gradSum: 0, batches: 0, skipped: 0, seconds: 0 } };
  if (o.resume) {
    // temporary files of a save that a crash (kill -9, power loss) interrupted: the renamed files are the truth
    for (const f of await readdir(runDir)) if (/\.tmp-\d+-/.test(f)) await rm(join(runDir, f), { force: true });
    const saved = await loadResume(runDir, model);
    trainer.loadState(saved.trainer);
    position = saved.position;
    log(`resuming ${runDir} at epoch ${position.epoch + 1}, batch ${position.batchInEpoch}, step ${trainer.stepCount}`);
  } else {
    await writeFile(join(runDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    await writeSplitFile(join(runDir, 'train.txt'), train);
    await writeSplitFile(join(runDir, 'val.txt'), val);
    await writeFile(join(runDir, 'metrics.jsonl'), '');
    await writeFile(join(runDir, 'metrics.csv'), `${CSV_FIELDS.join(',')}\n`);
  }

  const schedule = makeSchedule(config, stepsPerEpoch);
  const { size, inChannels, classes } = model.options;
  const saveModel = (file: string, metadata: Record<string, string>) => saveWeights(model, join(runDir, file), { ...metadata, ...source.weightsMetadata });
  let stepsThisRun = 0;
  const nonFinite = (what: string, where: string) => {
    if (!config.skipNonFinite)
      throw new UserError(`non-finite ${what} at ${where}; weights were not updated. Lower --lr, or pass --skip-nonfinite to skip such batches; resume with --resume ${runDir}`);
    position.partial.skipped++;
    log(`warning: skipped a batch with a non-finite ${what} at ${where}`);
  };
  const stop = async (): Promise<TrainRunResult> => {
    await saveResume(runDir, model, trainer.exportState(), position);
    await saveModel('last.safetensors', { epoch: String(position.epoch), step: String(trainer.stepCount) });
    await trainer.release();
    return { status: 'interrupted', position, model };
  };

  try {
    while (position.epoch < config.epochs) {
      const epoch = position.epoch + 1;
      const rng = epochRng(config.seed, epoch);
      const started = performance.now() - position.partial.seconds * 1000;
      const batches = source.batches({ batch: config.batch, rng, dropLast, skip: position.batchInEpoch });
      for await (const batch of batches) {
        if (position.batchInEpoch >= batchesPerEpoch) break;
        const lr = schedule(trainer.stepCount);
        const result = await trainer.step(
          { data: batch.images, dims: [batch.n, inChannels, size, size] },
          { data: batch.targets, dims: [batch.n, classes, size, size] },
          lr,
        );
        position.batchInEpoch++;
        if (result.nonFinite) {
          nonFinite(Number.isFinite(result.loss) ? 'gradient' : 'loss', `epoch ${epoch}, step ${trainer.stepCount + 1} (${samples} ${batch.ids.join(', ')})`);
        } else {
          position.partial.lossSum += result.loss;
          position.partial.batches++;
          if (result.applied) position.partial.gradSum += result.gradNorm ?? 0;
        }
        position.partial.seconds = (performance.now() - started) / 1000;
        o.onStep?.({ epoch, batch: position.batchInEpoch, batches: batchesPerEpoch, loss: result.loss, lr, imagesPerS: (position.partial.batches * config.batch) / position.partial.seconds });
        if (result.applied) stepsThisRun++;
        if (o.signal?.aborted || (o.maxSteps !== undefined && stepsThisRun >= o.maxSteps)) {
          await batches.return(undefined);
          return await stop();
        }
      }
      // the epoch's last, incomplete accumulation group (a smaller last batch, or fewer micro-batches): applied now,
      // averaged over its images, so that no group straddles two epochs
      if (trainer.pendingMicroBatches > 0) {
        const result = (await trainer.flush(schedule(trainer.stepCount)))!;
        if (result.nonFinite) nonFinite('gradient', `epoch ${epoch}, step ${trainer.stepCount + 1} (the epoch's last accumulation group)`);
        else position.partial.gradSum += result.gradNorm ?? 0;
        position.partial.seconds = (performance.now() - started) / 1000;
        if (result.applied) stepsThisRun++;
        if (o.signal?.aborted || (o.maxSteps !== undefined && stepsThisRun >= o.maxSteps)) return await stop();
      }

      const p = position.partial;
      const record: EpochRecord = {
        epoch,
        step: trainer.stepCount,
        lr: schedule(Math.max(0, trainer.stepCount - 1)), // the lr of the last step taken
        train_loss: p.lossSum / Math.max(1, p.batches),
        grad_norm: p.gradSum / Math.max(1, stepsPerEpoch),
        val_iou: null,
        val_dice: null,
        val_f1: null,
        images_per_s: (p.batches * config.batch) / Math.max(p.seconds, 1e-9),
        seconds: p.seconds,
        skipped_batches: p.skipped,
      };
      if (epoch % config.valEvery === 0 || epoch === config.epochs) {
        const segmenter = await Segmenter.create(model, { threads: config.threads });
        const score = await source.validate(model, segmenter).finally(() => segmenter.release());
        record.val_iou = score.iou;
        record.val_dice = score.dice;
        record.val_f1 = score.f1;
        if (position.best === null || record.val_iou > position.best.iou) {
          position.best = { iou: record.val_iou, epoch };
          await saveModel('best.safetensors', { epoch: String(epoch), val_iou: String(record.val_iou) });
        }
      }
      position = { ...position, epoch, batchInEpoch: 0, history: [...position.history, record], partial: { lossSum: 0, gradSum: 0, batches: 0, skipped: 0, seconds: 0 } };
      await saveModel('last.safetensors', { epoch: String(epoch), step: String(trainer.stepCount) });
      await saveResume(runDir, model, trainer.exportState(), position);
      await appendFile(join(runDir, 'metrics.jsonl'), `${JSON.stringify(record)}\n`);
      await appendFile(join(runDir, 'metrics.csv'), `${CSV_FIELDS.map((f) => record[f] ?? '').join(',')}\n`);
      await writeCurvesPng(join(runDir, 'curves.png'), position.history);
      o.onEpoch?.(record, position.best);
      if (o.signal?.aborted) return await stop();
    }
  } catch (e) {
    await trainer.release().catch(() => undefined);
    throw e;
  }
  await trainer.release();
  return { status: 'finished', position, model };
}
