import type { Dataset } from '../data/dataset.ts';
import { collate, BatchLoader } from '../data/loader.ts';
import type { SegmentationModel } from '../models/model.ts';
import { logitsToMask } from '../pipeline/postprocess.ts';
import { MetricAccumulator, scoreMasks, type Scores } from './metrics.ts';

export interface ImageResult {
  id: string;
  /** Class index (0-based mask folder). */
  cls: number;
  scores: Scores;
}

export interface Evaluation {
  perImage: ImageResult[];
  /** Per class: metric -> mean, std, n, skipped. */
  summary: Record<string, ReturnType<MetricAccumulator['aggregate']>>;
}

/** Something that maps a normalised batch to logits: a Segmenter, or a trainer's current weights. */
export interface LogitsSource {
  logits(batch: Float32Array, n: number): Promise<Float32Array>;
}

/**
 * Scores every image at the model's resolution (images resized bilinearly, masks by nearest neighbour, as the
 * original protocol validates), one image at a time. Multi-class models are scored per class (one mask folder each).
 *
 * @example
 * ```ts
 * const dataset = await scanDataset('my-data');
 * const { summary, perImage } = await evaluate(model, await Segmenter.create(model), dataset, dataset.ids);
 * console.log(summary['0']?.iou.mean);
 * ```
 */
export async function evaluate(
  model: SegmentationModel,
  runner: LogitsSource,
  ds: Dataset,
  ids: readonly string[],
  onProgress?: (done: number, total: number) => void,
  loader = new BatchLoader(ds, { size: model.options.size, inChannels: model.options.inChannels, cache: false }),
): Promise<Evaluation> {
  const { size, classes, inChannels } = model.options;
  const plane = size * size;
  const accumulators = Array.from({ length: ds.classes }, () => new MetricAccumulator());
  const perImage: ImageResult[] = [];
  for (let n = 0; n < ids.length; n++) {
    const sample = await loader.sample(ids[n]!);
    const batch = collate([sample], inChannels);
    const logits = await runner.logits(batch.images, 1);
    for (let k = 0; k < ds.classes; k++) {
      // binary model: foreground = logit > 0; multi-class: arg-max equals class k + 1 (class 0 is background) unless
      // the model has one output per mask folder, then each channel is thresholded on its own
      const pred =
        classes === 1
          ? logitsToMask(logits, 1, plane)
          : classes === ds.classes
            ? logitsToMask(logits.subarray(k * plane, (k + 1) * plane), 1, plane)
            : logitsToMask(logits, classes, plane).map((c) => (c === k + 1 ? 1 : 0));
      const truth = sample.mask.subarray(k * plane, (k + 1) * plane);
      const scores = scoreMasks(pred, truth, size, size);
      accumulators[k]!.update(scores);
      perImage.push({ id: ids[n]!, cls: k, scores });
    }
    onProgress?.(n + 1, ids.length);
  }
  return { perImage, summary: Object.fromEntries(accumulators.map((a, k) => [`class${k}`, a.aggregate()])) };
}
