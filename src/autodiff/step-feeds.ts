import type { SegmentationModel } from '../models/model.ts';
import type { Tensor, TensorMap } from '../runtime/types.ts';
import type { TrainingGraph } from './training-graph.ts';

const count = (shape: readonly unknown[]) => (shape as number[]).reduce((a, d) => a * d, 1);

/**
 * The feeds of one training step with `model`'s weights: fresh optimizer state (zeros), DropPath masks all kept
 * (ones), the given batch and lr. For probes and cross-runtime comparisons; the Trainer keeps its own state.
 */
export function trainingStepFeeds(graph: TrainingGraph, model: SegmentationModel, image: Tensor, target: Tensor, lr = 0.01): TensorMap {
  const feeds: TensorMap = { [graph.image]: image, [graph.target]: target, 'optim.lr': { data: Float32Array.of(lr), dims: [] } };
  for (const p of [...graph.params, ...graph.buffers]) feeds[p.input] = { data: model.weights.get(p.input)!, dims: p.shape };
  for (const s of graph.state) feeds[s.input] = { data: new Float32Array(count(s.shape)), dims: s.shape };
  for (const r of graph.randomInputs) feeds[r.input] = { data: new Float32Array(count(r.shape)).fill(1), dims: r.shape };
  return feeds;
}
