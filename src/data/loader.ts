import { Batcher, type BatcherOptions } from './batcher.ts';
import type { Dataset } from './dataset.ts';
import { loadPair } from './samples.ts';

export { collate, type Batch } from './batcher.ts';
export type LoaderOptions = BatcherOptions;

/**
 * Yields batches of a dataset folder; sharp decodes the next batch on libuv's thread pool while ONNX Runtime runs
 * the step on the current one.
 */
export class BatchLoader extends Batcher {
  constructor(ds: Dataset, o: LoaderOptions) {
    super((id) => loadPair(ds, id, o.inChannels === 1), o);
  }
}
