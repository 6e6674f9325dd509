// What the training loop asks of its data (run-core.ts): image pairs or volume slices, on Node or in the browser.
import type { LogitsSource } from '../eval/score-samples.ts';
import type { SegmentationModel } from '../models/model.ts';
import type { Rng } from '../util/rng.ts';

export interface TrainBatch {
  ids: string[];
  /** [n, inChannels, size, size] */
  images: Float32Array;
  /** [n, classes, size, size], as the model's loss wants them */
  targets: Float32Array;
  n: number;
}

export interface ValidationScore {
  /** Mean IoU (the checkpoint choice), Dice and F1 (the same as Dice for volumes). */
  iou: number;
  dice: number;
  f1: number;
}

export interface TrainingSource {
  kind: 'images' | 'volumes';
  train: string[];
  val: string[];
  /** Images (or slices) in one epoch of `train`. */
  samplesPerEpoch: number;
  /** `skip` batches are drawn but not yielded (resume mid-epoch). */
  batches(o: { batch: number; rng: Rng; dropLast: boolean; skip: number }): AsyncGenerator<TrainBatch>;
  validate(model: SegmentationModel, runner: LogitsSource): Promise<ValidationScore>;
  /** Extra metadata of every weights file the run writes. */
  weightsMetadata: Record<string, string>;
  /** Warnings about the data (skipped files), one line each. */
  warnings: string[];
}

