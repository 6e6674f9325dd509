import type { GraphBuilder } from '../ir/builder.ts';
import { attr, type Value } from '../ir/types.ts';
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
 * Train-mode BatchNorm2d: one ONNX BatchNormalization with training_mode=1, normalising with the batch mean and
 * biased variance. With ONNX momentum 0 (and zero input statistics) its 2nd and 3rd outputs are exactly the batch
 * mean and biased variance, from which PyTorch's running-stat updates are recorded (momentum blend, unbiased
 * variance, num_batches_tracked + 1). Autodiff differentiates it with the BatchNormalization rule (one fused op
 * instead of six elementwise passes forward). Needs a fixed batch size.
 */
export function batchNormTrain(b: GraphBuilder, p: BatchNormTrainInputs): Value {
  const [n, c, h, w] = p.x.shape;
  if (typeof n !== 'number') throw new Error('train-mode BatchNorm needs a fixed batch size');
  const count = n * (h as number) * (w as number);
  // ORT aliases outputs 1 and 2 to inputs 3 and 4 (it writes the batch statistics into them), so each BatchNorm
  // gets statistics inputs of its own: unshared by the builder, and with values no other constant has, so ORT's
  // ConstantSharing cannot merge them. Their values do not matter: momentum 0 multiplies them by zero.
  const tag = -1 - b.stateUpdates.length;
  const statsIn = () => b.constant(new Float32Array(c as number).fill(tag), [c as number], { shared: false });
  const [y, mean, variance] = b.op('BatchNormalization', [p.x, p.scale, p.bias, statsIn(), statsIn()], {
    epsilon: attr.float(p.eps),
    momentum: attr.float(0),
    training_mode: attr.int(1),
  }, 3);

  const keep = b.constant([1 - p.momentum], []);
  const m = b.constant([p.momentum], []);
  const unbiased = op.Mul(b, variance!, b.constant([count / Math.max(count - 1, 1)], []));
  b.stateUpdates.push(
    { buffer: p.mean.name, next: op.Add(b, op.Mul(b, p.mean, keep), op.Mul(b, mean!, m)) },
    { buffer: p.variance.name, next: op.Add(b, op.Mul(b, p.variance, keep), op.Mul(b, unbiased, m)) },
    { buffer: p.tracked.name, next: op.Add(b, p.tracked, b.constant([1], [])) },
  );
  return y!;
}
