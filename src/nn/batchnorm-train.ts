import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/types.ts';
import * as op from '../ops/index.ts';

export interface BatchNormTrainInputs {
  x: Value;
  scale: Value;
  bias: Value;
  mean: Value;
  variance: Value;
  tracked: Value;
  eps: number;
  momentum: number;
}

/**
 * Train-mode BatchNorm2d from elementary ops, so reverse-mode autodiff needs no BatchNorm rule:
 * normalises with the batch mean and biased variance, and records PyTorch's running-stat updates
 * (momentum blend, unbiased variance, num_batches_tracked + 1). Needs a fixed batch size.
 */
export function batchNormTrain(b: GraphBuilder, p: BatchNormTrainInputs): Value {
  const [n, c, h, w] = p.x.shape;
  if (typeof n !== 'number') throw new Error('train-mode BatchNorm needs a fixed batch size');
  const count = n * (h as number) * (w as number);
  const perChannel = [1, c as number, 1, 1];
  const mean = op.ReduceMean(b, p.x, [0, 2, 3]);
  const centered = op.Sub(b, p.x, mean);
  const variance = op.ReduceMean(b, op.Mul(b, centered, centered), [0, 2, 3]);
  const invStd = op.Reciprocal(b, op.Sqrt(b, op.Add(b, variance, b.constant([p.eps], []))));
  const gain = op.Mul(b, invStd, op.Reshape(b, p.scale, perChannel));
  const y = op.Add(b, op.Mul(b, centered, gain), op.Reshape(b, p.bias, perChannel));

  const keep = b.constant([1 - p.momentum], []);
  const m = b.constant([p.momentum], []);
  const flatMean = op.Reshape(b, mean, [c as number]);
  const unbiased = op.Mul(b, op.Reshape(b, variance, [c as number]), b.constant([count / Math.max(count - 1, 1)], []));
  b.stateUpdates.push(
    { buffer: p.mean.name, next: op.Add(b, op.Mul(b, p.mean, keep), op.Mul(b, flatMean, m)) },
    { buffer: p.variance.name, next: op.Add(b, op.Mul(b, p.variance, keep), op.Mul(b, unbiased, m)) },
    { buffer: p.tracked.name, next: op.Add(b, p.tracked, b.constant([1], [])) },
  );
  return y;
}
