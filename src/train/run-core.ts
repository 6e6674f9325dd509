// The training run, independent of where it runs: the loop (epochs, batches, the schedule, accumulation, the
// non-finite guard, validation, best-by-IoU, interruption and exact resume) over a TrainingSource, a RunStore and an
// ONNX Runtime backend. Node (loop.ts: run folder, sharp, onnxruntime-node) and the browser (src/web/train/: OPFS,
// canvas, onnxruntime-web) supply those three, so both follow the same protocol step for step.
import { UserError } from '../errors.ts';
import { createModel, type SegmentationModel } from '../models/model.ts';
import { adamW, sgd } from '../optim/optimizers.ts';
import { afterStep, constant, cosine, poly, type Schedule } from '../optim/schedules.ts';
import { Rng } from '../util/rng.ts';
import type { LogitsSource } from '../eval/score-samples.ts';
import { transunetLoss } from '../nn/losses.ts';
import type { TrainConfig } from './config.ts';
import type { EpochRecord } from './curves.ts';
import type { RunPosition } from './resume-format.ts';
import type { TrainingSource } from './sources-types.ts';
import { createTrainer, type BackendFactory, type Trainer, type TrainerState } from './trainer.ts';

/** Where a run keeps its state: a run folder on Node, an OPFS directory in the browser. */
export interface RunStore {
  /** Names the run in messages (the folder). */
  readonly name: string;
  /** How a user resumes it, for messages (`--resume <dir>`). */
  readonly resumeHint: string;
  /** A new run: keep its config and split, start empty metrics. */
  start(config: TrainConfig, train: readonly string[], val: readonly string[]): Promise<void>;
  /** Restores the weights into `model`; the optimizer state and position (a UserError when there is no checkpoint). */
  loadResume(model: SegmentationModel): Promise<{ trainer: TrainerState; position: RunPosition }>;
  /** Atomically: a crash leaves the previous checkpoint or this one. */
  saveResume(model: SegmentationModel, trainer: TrainerState, position: RunPosition): Promise<void>;
  saveWeights(name: 'best' | 'last', model: SegmentationModel, metadata: Record<string, string>): Promise<void>;
  /** After each epoch: its record (metrics files, curves). */
  epochDone(record: EpochRecord, history: readonly EpochRecord[]): Promise<void>;
}

/** A LogitsSource with the current weights, for validation; released after each validation. */
export type Validator = (model: SegmentationModel) => Promise<LogitsSource & { release(): Promise<void> }>;

export interface RunDeps {
  source: TrainingSource;
  store: RunStore;
  validator: Validator;
  /** ONNX Runtime for the training graph (default onnxruntime-node). */
  backend?: BackendFactory;
  /** Loads the starting weights of a fine-tuning run (config.init) into the new model; not called on resume. */
  initialWeights?: (model: SegmentationModel) => Promise<void>;
}

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
  /** Also save the resume checkpoint every this many optimizer steps (default: at epoch ends and on stopping only). */
  checkpointEvery?: number;
}

export interface TrainRunResult {
  status: 'finished' | 'interrupted';
  position: RunPosition;
  model: SegmentationModel;
}

/** The epoch's shuffling and augmentation randomness depends only on (seed, epoch): resuming mid-run is exact. */
export const epochRng = (seed: number, epoch: number) => new Rng((seed * 1_000_003 + epoch * 7_919 + 17) >>> 0);

/** The lr of every optimizer step: the schedule over epochs × steps per epoch, with the original timing (afterStep). */
export function makeSchedule(config: TrainConfig, stepsPerEpoch: number): Schedule {
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

export function makeTrainer(model: SegmentationModel, config: TrainConfig, backend?: BackendFactory): Trainer {
  const optimizer =
    config.optimizer === 'adamw'
      ? adamW({ weightDecay: config.weightDecay })
      : sgd({ momentum: config.momentum, weightDecay: config.weightDecay });
  return createTrainer(model, {
    optimizer,
    threads: config.threads,
    seed: config.seed,
    ...(backend ? { backend } : {}),
    accumulate: config.accumulate,
    dropPathRate: config.dropPath ?? undefined,
    // volumes: TransUNet's 0.5·CE + 0.5·Dice; images: the paper's (BCE or CE) + Dice
    loss: config.volume ? (b, logits, target) => transunetLoss(b, logits, target) : undefined,
  });
}

/** Runs (or, with `resume`, continues) a training run with the given source, store and runtime. */
export async function trainWith(config: TrainConfig, deps: RunDeps, o: TrainRunOptions = {}): Promise<TrainRunResult> {
  const { source, store } = deps;
  const log = o.onLog ?? (() => undefined);
  for (const w of source.warnings) log(`warning: ${w}`);
  const { train, val } = source;
  const samples = source.kind === 'volumes' ? 'slices' : 'images';
  // a config.json from before the option existed: that run dropped the last batch, and keeps doing so
  const dropLast = (config.dropLast as boolean | undefined) ?? true;
  const { batches: batchesPerEpoch, steps: stepsPerEpoch } = epochPlan(source.samplesPerEpoch, config.batch, config.accumulate, dropLast);
  if (source.samplesPerEpoch < config.batch || stepsPerEpoch < 1)
    throw new UserError(`${source.samplesPerEpoch} training ${samples} are fewer than one batch of ${dropLast ? `${config.batch}x${config.accumulate}` : config.batch}: lower --batch`);
  if (source.kind === 'volumes' && val.length === 0) throw new UserError(`no validation ${source.kind === 'volumes' ? 'cases' : 'images'}: raise --val or give --val-split`);

  const model = createModel(config.model, { size: config.size, inChannels: config.inChannels, classes: config.classes, seed: config.seed, lglKernel: config.lglKernel });
  if (config.init && !o.resume) {
    if (!deps.initialWeights) throw new UserError(`--init ${config.init}: this trainer cannot read weights files`);
    await deps.initialWeights(model);
    log(`starting from the weights ${config.init}`);
  }
  const trainer = makeTrainer(model, config, deps.backend);
  let position: RunPosition = { epoch: 0, batchInEpoch: 0, best: null, history: [], partial: { lossSum: 0, gradSum: 0, batches: 0, skipped: 0, seconds: 0 } };
  if (o.resume) {
    const saved = await store.loadResume(model);
    trainer.loadState(saved.trainer);
    position = saved.position;
    log(`resuming ${store.name} at epoch ${position.epoch + 1}, batch ${position.batchInEpoch}, step ${trainer.stepCount}`);
  } else {
    await store.start(config, train, val);
  }

  const schedule = makeSchedule(config, stepsPerEpoch);
  const { size, inChannels, classes } = model.options;
  const saveModel = (name: 'best' | 'last', metadata: Record<string, string>) =>
    store.saveWeights(name, model, { ...metadata, ...source.weightsMetadata, ...(config.init ? { init: config.init } : {}) });
  let stepsThisRun = 0;
  const nonFinite = (what: string, where: string) => {
    if (!config.skipNonFinite)
      throw new UserError(`non-finite ${what} at ${where}; weights were not updated. Lower --lr, or pass --skip-nonfinite to skip such batches; resume with ${store.resumeHint}`);
    position.partial.skipped++;
    log(`warning: skipped a batch with a non-finite ${what} at ${where}`);
  };
  const stop = async (): Promise<TrainRunResult> => {
    await store.saveResume(model, trainer.exportState(), position);
    await saveModel('last', { epoch: String(position.epoch), step: String(trainer.stepCount) });
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
        // a crash or a closed tab then loses at most this many steps (the state saved is the one stop() saves)
        if (o.checkpointEvery && result.applied && stepsThisRun % o.checkpointEvery === 0) await store.saveResume(model, trainer.exportState(), position);
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
        const runner = await deps.validator(model);
        const score = await source.validate(model, runner).finally(() => runner.release());
        record.val_iou = score.iou;
        record.val_dice = score.dice;
        record.val_f1 = score.f1;
        if (position.best === null || record.val_iou > position.best.iou) {
          position.best = { iou: record.val_iou, epoch };
          await saveModel('best', { epoch: String(epoch), val_iou: String(record.val_iou) });
        }
      }
      position = { ...position, epoch, batchInEpoch: 0, history: [...position.history, record], partial: { lossSum: 0, gradSum: 0, batches: 0, skipped: 0, seconds: 0 } };
      await saveModel('last', { epoch: String(epoch), step: String(trainer.stepCount) });
      await store.saveResume(model, trainer.exportState(), position);
      await store.epochDone(record, position.history);
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
