import type { Dataset } from '../data/dataset.ts';
import { BatchLoader } from '../data/loader.ts';
import type { SegmentationModel } from '../models/model.ts';
import { scoreSamples, type Evaluation, type LogitsSource } from './score-samples.ts';

export { scoreSamples, type Evaluation, type ImageResult, type LogitsSource } from './score-samples.ts';

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
  return scoreSamples(model, runner, ds.classes, ids, (id) => loader.sample(id), onProgress);
}
