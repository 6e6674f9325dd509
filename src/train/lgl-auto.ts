// `train --lgl-kernel auto`: the mean target diameter of the TRAINING masks, measured where the network sees them.
//
// Definition (documented in the README): every training mask (each mask class separately) is binarised as the
// loader does (binarizeMask) and resized to the training input size size×size with the loader's resize
// (cv2 INTER_NEAREST); its connected foreground objects (8-connectivity) each count once, with the
// equivalent-circle diameter 2·sqrt(area/π) in pixels. D̄ is the mean over all objects of all training masks
// (empty masks add none); K = D̄/16 rounded to the nearest odd integer, clamped to [3, 15] (kernelFromDiameter).
// Measured at the input size because the kernel acts on the stride-8 bottleneck: the same lesion is twice as many
// bottleneck pixels at 256 as at 128.
import type { Dataset } from '../data/dataset.ts';
import { decodeImage } from '../data/image.ts';
import { binarizeMask } from '../data/pairs.ts';
import { resizeNearestCv2 } from '../data/resize.ts';
import { makeSplit, readSplitFile } from '../data/split.ts';
import { UserError } from '../errors.ts';
import { DiameterTally, type LglKernelMeasurement } from '../models/mobileutr/lgl-kernel.ts';
import type { TrainConfig } from './config.ts';

/** Measures the training masks `ids` of `ds` at size×size. */
export async function measureTargetDiameter(ds: Dataset, ids: readonly string[], size: number): Promise<LglKernelMeasurement> {
  const tally = new DiameterTally();
  for (const id of ids) {
    for (let k = 0; k < ds.classes; k++) {
      const m = await decodeImage(ds.maskPath(id, k), { grey: true });
      const binary = new Uint8Array(m.width * m.height);
      binarizeMask(m.pixels, binary);
      const resized = m.width === size && m.height === size ? binary : resizeNearestCv2(binary, m.width, m.height, 1, size, size);
      tally.add(resized, size, size);
    }
  }
  return tally.result(size);
}

/** The training ids a new run will use (the same rule as the run's split: split file, else the seeded random split). */
export async function trainingIds(config: TrainConfig, ds: Dataset): Promise<string[]> {
  if (config.trainSplit) return readSplitFile(config.trainSplit, ds.ids);
  return makeSplit(ds.ids, config.val, config.seed).train;
}

/** `--lgl-kernel auto` for a new 2-D run: the measurement (a UserError when the training masks hold no foreground). */
export async function autoLglKernel(config: TrainConfig, ds: Dataset): Promise<LglKernelMeasurement> {
  const m = await measureTargetDiameter(ds, await trainingIds(config, ds), config.size);
  if (m.objects === 0) throw new UserError(`--lgl-kernel auto: the ${m.masks} training masks of ${config.data} hold no foreground at ${config.size}x${config.size}; give --lgl-kernel N`);
  return m;
}
