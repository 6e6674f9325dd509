import type { Intensity } from '../data/volume/intensity.ts';
import type { SliceAxis } from '../data/volume/slices.ts';
import { UserError } from '../errors.ts';
import type { LglKernelMeasurement } from '../models/mobileutr/lgl-kernel.ts';

/** How a volume dataset becomes training slices (absent for 2-D image datasets). */
export interface VolumeTrainOptions {
  intensity: Intensity;
  axis: SliceAxis;
  /** Neighbouring slices on each side as extra channels (2.5-D). */
  context: 0 | 1;
  /** Budget for decoded volumes held at once. */
  memoryMb: number;
  /** The volume of a 4-D file to use. */
  volumeIndex: number | null;
}

/** Everything that defines a training run; written to the run folder as config.json. */
export interface TrainConfig {
  model: string;
  size: number;
  inChannels: number;
  /** Model outputs: 1 for one mask folder (sigmoid), K+1 for K folders (softmax with background). */
  classes: number;
  data: string;
  /** Split files; when absent a seeded random split with `val` of the pairs for validation. */
  trainSplit: string | null;
  valSplit: string | null;
  val: number;
  epochs: number;
  batch: number;
  /**
   * Drop the last, smaller batch of each epoch (and an incomplete accumulation group). Default false, as the
   * original `DataLoader(drop_last=False)`: BUSI's 452 training images at batch 8 give 57 steps per epoch, the
   * last of 4 images.
   */
  dropLast: boolean;
  /**
   * Rotate and flip after resizing (cheaper; see LoaderOptions.augmentAfterResize). Default false, as the original:
   * albumentations transforms the stored image, then cv2 resizes it.
   */
  augmentAfterResize: boolean;
  lr: number;
  optimizer: 'sgd' | 'adamw';
  momentum: number;
  weightDecay: number;
  schedule: 'poly' | 'cosine' | 'constant';
  /** Linear warm-up, in epochs. */
  warmupEpochs: number;
  seed: number;
  threads: number;
  /** Images decoded in parallel by the loader (sharp/libvips threads). */
  workers: number;
  accumulate: number;
  /** MobileUtr's LGL kernel (odd, 3..31; absent in runs from before the option: 9, the official code). */
  lglKernel?: number;
  /** What `--lgl-kernel auto` measured on the training masks (null or absent: the kernel was given or the default). */
  lglKernelAuto?: LglKernelMeasurement | null;
  /** DropPath rate override (null: the model's own, 0.1 in MobileUtr's LGL bottleneck). */
  dropPath: number | null;
  /** On a non-finite loss or gradient: stop (default) or skip the batch. */
  skipNonFinite: boolean;
  /** Validate every this many epochs (and always after the last). */
  valEvery: number;
  /** Fine-tuning: the weights the run starts from (a .safetensors path or a bundled name such as busi); absent: initialised afresh. */
  init?: string | null;
  /** Volume datasets: slicing and intensity (null or absent: a 2-D image dataset). */
  volume?: VolumeTrainOptions | null;
}

/** The paper's protocol (DESIGN.md §4). */
export const PAPER_DEFAULTS: Omit<TrainConfig, 'data' | 'classes'> = {
  model: 'mobileutr',
  size: 256,
  inChannels: 3,
  trainSplit: null,
  valSplit: null,
  val: 0.3,
  epochs: 300,
  batch: 8,
  dropLast: false,
  augmentAfterResize: false,
  lr: 0.01,
  optimizer: 'sgd',
  momentum: 0.9,
  weightDecay: 1e-4,
  schedule: 'poly',
  warmupEpochs: 0,
  seed: 41,
  threads: 2,
  workers: 2,
  accumulate: 1,
  dropPath: null,
  skipNonFinite: false,
  valEvery: 1,
};

export function checkConfig(c: TrainConfig): void {
  const bad = (msg: string) => {
    throw new UserError(msg);
  };
  if (!c.volume && c.inChannels !== 1 && c.inChannels !== 3) bad(`--in-channels must be 1 (grey) or 3 (RGB): images are read as one or the other, got ${c.inChannels}`);
  if (!(c.lr > 0 && Number.isFinite(c.lr))) bad(`--lr must be a positive number, got ${c.lr}`);
  if (!(c.weightDecay >= 0)) bad(`--weight-decay must be >= 0, got ${c.weightDecay}`);
  if (!(c.momentum >= 0 && c.momentum < 1)) bad(`--momentum must be in [0, 1), got ${c.momentum}`);
  if (!(c.warmupEpochs >= 0 && c.warmupEpochs <= c.epochs)) bad(`--warmup-epochs must be between 0 and --epochs, got ${c.warmupEpochs}`);
  if (c.dropPath !== null && !(c.dropPath >= 0 && c.dropPath < 1)) bad(`--drop-path must be in [0, 1), got ${c.dropPath}`);
  if (!['sgd', 'adamw'].includes(c.optimizer)) bad(`--optimizer must be sgd or adamw, got ${c.optimizer}`);
  if (!['poly', 'cosine', 'constant'].includes(c.schedule)) bad(`--schedule must be poly, cosine or constant, got ${c.schedule}`);
}
