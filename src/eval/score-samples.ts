// Scoring samples at the model's resolution with the paper's metrics. No decoding or files here: Node's evaluate()
// feeds it from a dataset folder, the browser trainer from canvas-decoded files.
import { collate } from '../data/batcher.ts';
import type { Sample } from '../data/pairs.ts';
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

/** Scores `ids` one sample at a time (`sampleOf` gives each at the model size, not augmented); `maskClasses` mask planes each. */
export async function scoreSamples(
  model: SegmentationModel,
  runner: LogitsSource,
  maskClasses: number,
  ids: readonly string[],
  sampleOf: (id: string) => Promise<Sample>,
  onProgress?: (done: number, total: number) => void,
): Promise<Evaluation> {
  const { size, classes, inChannels } = model.options;
  const plane = size * size;
  const accumulators = Array.from({ length: maskClasses }, () => new MetricAccumulator());
  const perImage: ImageResult[] = [];
  for (let n = 0; n < ids.length; n++) {
    const sample = await sampleOf(ids[n]!);
    const batch = collate([sample], inChannels);
    const logits = await runner.logits(batch.images, 1);
    for (let k = 0; k < maskClasses; k++) {
      // binary model: foreground = logit > 0; multi-class: arg-max equals class k + 1 (class 0 is background) unless
      // the model has one output per mask folder, then each channel is thresholded on its own
      const pred =
        classes === 1
          ? logitsToMask(logits, 1, plane)
          : classes === maskClasses
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
