// The TrainingSource of image/mask pairs, whatever decodes them: Node's BatchLoader (sharp, files) and the browser's
// Batcher over picked files (canvas) give the same batches, targets and validation score through this one function.
import { modelTargets, type Batcher } from '../data/batcher.ts';
import { scoreSamples } from '../eval/score-samples.ts';
import type { TrainConfig } from './config.ts';
import type { TrainingSource } from './sources-types.ts';

export interface PairSourceOptions {
  /** Mask planes per pair (mask folders). */
  maskClasses: number;
  train: string[];
  val: string[];
  weightsMetadata: Record<string, string>;
  /** Pairing problems found while scanning, one line each; reported as skipped. */
  problems: readonly string[];
}

export function pairSource(batcher: Batcher, config: TrainConfig, o: PairSourceOptions): TrainingSource {
  const plane = config.size * config.size;
  return {
    kind: 'images',
    train: o.train,
    val: o.val,
    samplesPerEpoch: o.train.length,
    async *batches(b) {
      for await (const batch of batcher.batches(o.train, { batch: b.batch, rng: b.rng, augment: true, dropLast: b.dropLast, skip: b.skip }))
        yield { ids: batch.ids, images: batch.images, targets: modelTargets(batch, o.maskClasses, config.classes, plane), n: batch.n };
    },
    async validate(model, runner) {
      const c0 = (await scoreSamples(model, runner, o.maskClasses, o.val, (id) => batcher.sample(id))).summary.class0!;
      return { iou: c0.iou!.mean, dice: c0.dice!.mean, f1: c0.f1!.mean };
    },
    weightsMetadata: o.weightsMetadata,
    warnings: o.problems.map((p) => `${p} (skipped)`),
  };
}
