// Segmentation losses as compositions of ONNX ops (autodiff differentiates them like any layer).
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/types.ts';
import * as op from '../ops/index.ts';

type B = GraphBuilder;

export interface LossOptions {
  /** Weight of the cross-entropy term (BCE for one class, CE for several); default 0.5 as in the paper. */
  ceWeight?: number;
  /** Dice smoothing added to numerator and denominator; default 1e-5. */
  smooth?: number;
}

const scalar = (b: B, v: number) => b.constant([v], []);
const allAxes = (v: Value) => [...v.shape.keys()];

/** Mean over the batch of the per-sample soft Dice (2Σpt + s)/(Σp + Σt + s), summing over axes `axes`. */
function meanDice(b: B, p: Value, t: Value, axes: number[], smooth: number): Value {
  const inter = op.ReduceSum(b, op.Mul(b, p, t), axes, false);
  const denom = op.Add(b, op.Add(b, op.ReduceSum(b, p, axes, false), op.ReduceSum(b, t, axes, false)), scalar(b, smooth));
  const dice = op.Div(b, op.Add(b, op.Mul(b, inter, scalar(b, 2)), scalar(b, smooth)), denom);
  return op.ReduceMean(b, dice, allAxes(dice), false);
}

/** BCE with logits, mean over all elements, in the stable form relu(x) − x·t + log(1 + exp(−|x|)). */
export function bceWithLogits(b: B, logits: Value, target: Value): Value {
  const perPixel = op.Add(b, op.Sub(b, op.Relu(b, logits), op.Mul(b, logits, target)), op.Softplus(b, op.Neg(b, op.Abs(b, logits))));
  return op.ReduceMean(b, perPixel, allAxes(perPixel), false);
}

/**
 * The paper's binary loss: ceWeight·BCEWithLogits(mean) + (1 − mean_b Dice_b), Dice per sample on sigmoid
 * probabilities over (C, H, W). logits and target are [N, 1, H, W]; target holds 0/1.
 *
 * @example const loss = bceDiceLoss(b, logits, b.input('target', logits.shape)); // scalar
 */
export function bceDiceLoss(b: B, logits: Value, target: Value, o: LossOptions = {}): Value {
  const bce = bceWithLogits(b, logits, target);
  const dice = meanDice(b, op.Sigmoid(b, logits), target, [1, 2, 3], o.smooth ?? 1e-5);
  return op.Add(b, op.Mul(b, bce, scalar(b, o.ceWeight ?? 0.5)), op.Sub(b, scalar(b, 1), dice));
}

/**
 * Multi-class loss: ceWeight·CE(mean over pixels) + (1 − mean over samples and classes of the soft Dice on
 * softmax probabilities). logits [N, K, H, W]; target one-hot [N, K, H, W].
 */
export function diceCeLoss(b: B, logits: Value, target: Value, o: LossOptions = {}): Value {
  const [n, , h, w] = logits.shape as number[];
  const logProb = op.LogSoftmax(b, logits, 1);
  const ce = op.Mul(b, op.ReduceSum(b, op.Mul(b, target, logProb), allAxes(logProb), false), scalar(b, -1 / (n! * h! * w!)));
  const dice = meanDice(b, op.Softmax(b, logits, 1), target, [2, 3], o.smooth ?? 1e-5);
  return op.Add(b, op.Mul(b, ce, scalar(b, o.ceWeight ?? 0.5)), op.Sub(b, scalar(b, 1), dice));
}

/**
 * TransUNet's multi-organ loss (trainer.py, utils.DiceLoss): 0.5·CE(mean over pixels) + 0.5·mean over classes
 * (background included) of 1 − (2Σpt + s)/(Σp² + Σt² + s), the sums running over the whole batch, p the softmax.
 * logits [N, K, H, W]; target one-hot [N, K, H, W].
 */
export function transunetLoss(b: B, logits: Value, target: Value, o: LossOptions = {}): Value {
  const [n, k, h, w] = logits.shape as number[];
  const smooth = o.smooth ?? 1e-5;
  const ce = op.Mul(b, op.ReduceSum(b, op.Mul(b, target, op.LogSoftmax(b, logits, 1)), allAxes(logits), false), scalar(b, -1 / (n! * h! * w!)));
  const p = op.Softmax(b, logits, 1);
  const axes = [0, 2, 3];
  const inter = op.ReduceSum(b, op.Mul(b, p, target), axes, false);
  const denom = op.Add(b, op.Add(b, op.ReduceSumSquare(b, p, axes, false), op.ReduceSumSquare(b, target, axes, false)), scalar(b, smooth));
  const dice = op.Div(b, op.Add(b, op.Mul(b, inter, scalar(b, 2)), scalar(b, smooth)), denom);
  const diceLoss = op.Sub(b, scalar(b, 1), op.Mul(b, op.ReduceSum(b, dice, [0], false), scalar(b, 1 / k!)));
  const half = scalar(b, o.ceWeight ?? 0.5);
  return op.Add(b, op.Mul(b, ce, half), op.Mul(b, diceLoss, half));
}

/** The default loss for a model with `classes` outputs: BCE + Dice for one class, CE + Dice otherwise. */
export function segmentationLoss(b: B, logits: Value, target: Value, o: LossOptions = {}): Value {
  return logits.shape[1] === 1 ? bceDiceLoss(b, logits, target, o) : diceCeLoss(b, logits, target, o);
}
