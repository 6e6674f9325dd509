// One table-driven gradient check: every gradient rule against central finite differences, both run by ONNX Runtime.
// f(x) = Σ r·y(x) with a fixed random r; the FD side sums in float64 in JS, so only y's float32 rounding remains.
import { describe, expect, it } from 'vitest';
import { backward } from '../../src/autodiff/backward.ts';
import { fuseAttention, fuseGelu, fuseSoftmaxMatMul } from '../../src/autodiff/composites.ts';
import { GRADIENT_RULES } from '../../src/autodiff/rules.ts';
import { encodeGraph } from '../../src/autodiff/training-graph.ts';
import { GraphBuilder } from '../../src/ir/builder.ts';
import { attr, numel, type Value } from '../../src/ir/types.ts';
import { batchNormTrain } from '../../src/nn/batchnorm-train.ts';
import { gelu } from '../../src/nn/layers.ts';
import { bceDiceLoss, diceCeLoss, transunetLoss } from '../../src/nn/losses.ts';
import { shift } from '../../src/models/unext/shift.ts';
import * as op from '../../src/ops/index.ts';
import { NodeSession } from '../../src/runtime/session.ts';
import { Rng } from '../../src/util/rng.ts';

type B = GraphBuilder;
/** How to fill an input: uniform in [lo, hi], optionally with |x| >= gap (away from kinks), or distinct values. */
interface Fill {
  lo?: number;
  hi?: number;
  gap?: number;
  distinct?: boolean;
  /** Not differentiated (e.g. a target); still fed. */
  constant?: boolean;
  /** Values from a fixed list (e.g. 0/1 targets). */
  choices?: number[];
}
interface Case {
  name: string;
  inputs: Record<string, { shape: number[] } & Fill>;
  build: (b: B, v: Record<string, Value>) => Value;
  /** Runs on the forward graph before differentiation (composite fusion). */
  prepare?: (b: B) => void;
  /** FD step (default 1e-2) and tolerance on max|fd − analytic| / max|analytic|, per input tensor (default 2e-3). */
  h?: number;
  tol?: number;
}

const conv = (b: B, x: Value, w: Value, bias: Value | null, o: op.ConvOptions = {}) => op.Conv(b, x, w, bias, o);
const convT = (b: B, x: Value, w: Value, bias: Value | null, o: Record<string, number[] | number>) =>
  b.op1('ConvTranspose', bias ? [x, w, bias] : [x, w], Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Array.isArray(v) ? attr.ints(v) : attr.int(v)])));

const CASES: Case[] = [
  { name: 'Conv 3x3 pad 1', inputs: { x: { shape: [2, 3, 6, 6] }, w: { shape: [4, 3, 3, 3] }, b: { shape: [4] } }, build: (b, v) => conv(b, v.x!, v.w!, v.b!, { pads: [1, 1, 1, 1] }) },
  { name: 'Conv 3x3 pad 1 at 8x8 (im2col MatMul)', inputs: { x: { shape: [2, 2, 8, 8] }, w: { shape: [3, 2, 3, 3] } }, build: (b, v) => conv(b, v.x!, v.w!, null, { pads: [1, 1, 1, 1] }) },
  { name: 'Conv dilation 2, asymmetric pads, 6 channels (per-tap MatMul)', inputs: { x: { shape: [2, 6, 7, 6] }, w: { shape: [3, 6, 3, 2] } }, build: (b, v) => conv(b, v.x!, v.w!, null, { dilations: [2, 2], pads: [2, 1, 0, 1] }) },
  { name: 'Conv 16->2 3x3', inputs: { x: { shape: [1, 16, 4, 4] }, w: { shape: [2, 16, 3, 3] } }, build: (b, v) => conv(b, v.x!, v.w!, null, { pads: [1, 1, 1, 1] }) },
  { name: 'Conv 1x1 (MatMul path)', inputs: { x: { shape: [2, 5, 4, 3] }, w: { shape: [3, 5, 1, 1] }, b: { shape: [3] } }, build: (b, v) => conv(b, v.x!, v.w!, v.b!) },
  { name: 'Conv depthwise 3x3', inputs: { x: { shape: [2, 4, 8, 8] }, w: { shape: [4, 1, 3, 3] }, b: { shape: [4] } }, build: (b, v) => conv(b, v.x!, v.w!, v.b!, { pads: [1, 1, 1, 1], group: 4 }) },
  { name: 'Conv depthwise 3x3 at 5x5 (no SpaceToDepth)', inputs: { x: { shape: [2, 3, 5, 5] }, w: { shape: [3, 1, 3, 3] } }, build: (b, v) => conv(b, v.x!, v.w!, null, { pads: [1, 1, 1, 1], group: 3 }) },
  { name: 'Conv depthwise 7x7 pad 3', inputs: { x: { shape: [2, 3, 8, 8] }, w: { shape: [3, 1, 7, 7] } }, build: (b, v) => conv(b, v.x!, v.w!, null, { pads: [3, 3, 3, 3], group: 3 }) },
  // MobileUtr's --lgl-kernel: LocalAgg's depthwise k×k on the stride-8 map, which at small sizes is narrower than k
  { name: 'Conv depthwise 5x5 pad 2 (--lgl-kernel 5)', inputs: { x: { shape: [2, 3, 8, 8] }, w: { shape: [3, 1, 5, 5] }, b: { shape: [3] } }, build: (b, v) => conv(b, v.x!, v.w!, v.b!, { pads: [2, 2, 2, 2], group: 3 }) },
  { name: 'Conv depthwise 15x15 pad 7 on a 4x4 map (--lgl-kernel 15 at size 32)', inputs: { x: { shape: [2, 3, 4, 4] }, w: { shape: [3, 1, 15, 15] } }, build: (b, v) => conv(b, v.x!, v.w!, null, { pads: [7, 7, 7, 7], group: 3 }) },
  { name: 'Conv grouped 1->4 per group', inputs: { x: { shape: [2, 3, 6, 6] }, w: { shape: [12, 1, 3, 3] } }, build: (b, v) => conv(b, v.x!, v.w!, null, { pads: [1, 1, 1, 1], group: 3 }) },
  { name: 'Conv grouped 4->1 per group', inputs: { x: { shape: [2, 12, 6, 6] }, w: { shape: [3, 4, 3, 3] }, b: { shape: [3] } }, build: (b, v) => conv(b, v.x!, v.w!, v.b!, { pads: [1, 1, 1, 1], group: 3 }) },
  { name: 'Conv grouped 2->2 per group', inputs: { x: { shape: [1, 4, 5, 5] }, w: { shape: [4, 2, 3, 3] } }, build: (b, v) => conv(b, v.x!, v.w!, null, { pads: [1, 1, 1, 1], group: 2 }) },
  { name: 'Conv stride 2 pad 1 odd size', inputs: { x: { shape: [2, 3, 7, 7] }, w: { shape: [4, 3, 3, 3] } }, build: (b, v) => conv(b, v.x!, v.w!, null, { strides: [2, 2], pads: [1, 1, 1, 1] }) },
  { name: 'Conv dilation 2, asymmetric pads', inputs: { x: { shape: [1, 2, 7, 6] }, w: { shape: [2, 2, 3, 2] } }, build: (b, v) => conv(b, v.x!, v.w!, null, { dilations: [2, 2], pads: [2, 1, 0, 1] }) },
  { name: 'Conv stride 2 depthwise', inputs: { x: { shape: [2, 3, 8, 8] }, w: { shape: [3, 1, 3, 3] } }, build: (b, v) => conv(b, v.x!, v.w!, null, { strides: [2, 2], pads: [1, 1, 1, 1], group: 3 }) },
  { name: 'ConvTranspose depthwise k2 s2', inputs: { x: { shape: [2, 4, 3, 3] }, w: { shape: [4, 1, 2, 2] }, b: { shape: [4] } }, build: (b, v) => convT(b, v.x!, v.w!, v.b!, { kernel_shape: [2, 2], strides: [2, 2], group: 4 }) },
  { name: 'ConvTranspose 3x3 s2 p1 output_padding 1', inputs: { x: { shape: [1, 3, 3, 4] }, w: { shape: [3, 2, 3, 3] } }, build: (b, v) => convT(b, v.x!, v.w!, null, { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }) },
  { name: 'MaxPool 2x2', inputs: { x: { shape: [2, 3, 4, 6], distinct: true } }, build: (b, v) => op.MaxPool(b, v.x!, [2, 2], [2, 2]) },
  { name: 'MaxPool 3x3 stride 3, sizes not divisible (floor)', inputs: { x: { shape: [2, 2, 7, 10], distinct: true } }, build: (b, v) => op.MaxPool(b, v.x!, [3, 3], [3, 3]) },
  { name: 'Relu then MaxPool 2x2 (windows of tied zeros)', inputs: { x: { shape: [2, 2, 4, 6], lo: -1, hi: 0.5, gap: 0.1 } }, build: (b, v) => op.MaxPool(b, op.Relu(b, v.x!), [2, 2], [2, 2]) },
  { name: 'AveragePool 2x2', inputs: { x: { shape: [2, 3, 4, 6] } }, build: (b, v) => op.AveragePool(b, v.x!, [2, 2], [2, 2]) },
  { name: 'Resize linear align_corners x2', inputs: { x: { shape: [2, 3, 4, 5] } }, build: (b, v) => op.ResizeLinear(b, v.x!, [1, 1, 2, 2], true) },
  { name: 'Resize nearest x2', inputs: { x: { shape: [2, 2, 3, 4] } }, build: (b, v) => op.ResizeNearest(b, v.x!, [1, 1, 2, 2]) },
  { name: 'Concat + Split', inputs: { a: { shape: [2, 3, 4] }, c: { shape: [2, 2, 4] } }, build: (b, v) => op.Mul(b, op.Split(b, op.Concat(b, [v.a!, v.c!], 1), [1, 4], 1)[1]!, op.Split(b, op.Concat(b, [v.c!, v.a!], 1), [4, 1], 1)[0]!) },
  { name: 'Split with one output unused', inputs: { a: { shape: [2, 6] } }, build: (b, v) => op.Split(b, v.a!, [2, 3, 1], 1)[1]! },
  { name: 'Slice step 2 (strided sampler)', inputs: { x: { shape: [2, 3, 6, 7] } }, build: (b, v) => op.Slice(b, v.x!, [0, 1], [6, 7], [2, 3], [2, 2]) },
  { name: 'Slice ranges, negative step', inputs: { x: { shape: [3, 8] } }, build: (b, v) => op.Mul(b, op.Slice(b, v.x!, [1, -2], [3, 0], [0, 1], [1, -3]), op.Slice(b, v.x!, [0, 6], [2, 8], [0, 1])) },
  { name: 'Pad with zeros, asymmetric', inputs: { x: { shape: [2, 3, 4, 5] } }, build: (b, v) => op.Pad(b, v.x!, [0, 0, 2, 1, 0, 0, 1, 0]) },
  { name: 'Reshape + Transpose', inputs: { x: { shape: [2, 3, 4] } }, build: (b, v) => op.Transpose(b, op.Reshape(b, v.x!, [2, 12, 1]), [2, 0, 1]) },
  { name: 'Expand', inputs: { x: { shape: [2, 1, 3] } }, build: (b, v) => op.Expand(b, v.x!, [4, 2, 5, 3]) },
  { name: 'Gemm transB', inputs: { a: { shape: [5, 4] }, w: { shape: [3, 4] }, c: { shape: [3] } }, build: (b, v) => op.Gemm(b, v.a!, v.w!, v.c!, { transB: true }) },
  { name: 'Gemm transA', inputs: { a: { shape: [4, 5] }, w: { shape: [4, 3] } }, build: (b, v) => op.Gemm(b, v.a!, v.w!, null, { transA: true }) },
  { name: 'MatMul 4-D x 2-D broadcast', inputs: { a: { shape: [2, 3, 4, 5] }, w: { shape: [5, 2] } }, build: (b, v) => op.MatMul(b, v.a!, v.w!) },
  { name: 'MatMul batched', inputs: { a: { shape: [2, 3, 4, 5] }, w: { shape: [2, 3, 5, 3] } }, build: (b, v) => op.MatMul(b, v.a!, v.w!) },
  { name: 'Softmax', inputs: { x: { shape: [3, 4, 5] } }, build: (b, v) => op.Softmax(b, v.x!, -1) },
  { name: 'SoftmaxMatMul composite (attention)', inputs: { s: { shape: [2, 3, 4, 5], lo: -2, hi: 2 }, v: { shape: [2, 3, 5, 3] } }, build: (b, v) => op.MatMul(b, op.Softmax(b, v.s!, -1), v.v!), prepare: (b) => expect(fuseSoftmaxMatMul(b)).toBe(1) },
  { name: 'Attention composite, scaled (P recomputed)', inputs: { q: { shape: [2, 3, 4, 5] }, k: { shape: [2, 3, 5, 6] }, v: { shape: [2, 3, 6, 3] } }, build: (b, v) => op.MatMul(b, op.Softmax(b, op.MatMul(b, op.Mul(b, v.q!, b.constant([0.7], [])), v.k!), -1), v.v!), prepare: (b) => expect(fuseAttention(b)).toBe(1) },
  { name: 'Attention composite, two chained (the first output is the second query)', inputs: { q: { shape: [2, 4, 3] }, k: { shape: [2, 3, 4] }, v: { shape: [2, 4, 3] } }, build: (b, v) => { const att = (q: Value) => op.MatMul(b, op.Softmax(b, op.MatMul(b, op.Mul(b, q, b.constant([0.5], [])), v.k!), -1), v.v!); return att(att(v.q!)); }, prepare: (b) => expect(fuseAttention(b)).toBe(2) },
  { name: 'Attention composite, unscaled', inputs: { q: { shape: [3, 4, 5] }, k: { shape: [3, 5, 4] }, v: { shape: [3, 4, 2] } }, build: (b, v) => op.MatMul(b, op.Softmax(b, op.MatMul(b, v.q!, v.k!), -1), v.v!), prepare: (b) => expect(fuseAttention(b)).toBe(1) },
  { name: 'Softmax feeding MatMul and more (not fused)', inputs: { s: { shape: [3, 4], lo: -2, hi: 2 }, v: { shape: [4, 2] } }, build: (b, v) => { const p = op.Softmax(b, v.s!, -1); return op.Add(b, op.MatMul(b, p, v.v!), op.ReduceSum(b, p, [1])); }, prepare: (b) => expect(fuseSoftmaxMatMul(b)).toBe(0) },
  { name: 'LogSoftmax axis 1', inputs: { x: { shape: [2, 4, 3] } }, build: (b, v) => op.LogSoftmax(b, v.x!, 1) },
  { name: 'LayerNormalization', inputs: { x: { shape: [6, 8] }, s: { shape: [8] }, t: { shape: [8] } }, build: (b, v) => op.LayerNormalization(b, v.x!, v.s!, v.t!, 1e-5) },
  { name: 'LayerNormalization eps 1e-6, 3-D', inputs: { x: { shape: [2, 3, 8] }, s: { shape: [8] }, t: { shape: [8] } }, build: (b, v) => op.LayerNormalization(b, v.x!, v.s!, v.t!, 1e-6) },
  { name: 'Erf', inputs: { x: { shape: [3, 5], lo: -2, hi: 2 } }, build: (b, v) => op.Erf(b, v.x!) },
  { name: 'Sigmoid', inputs: { x: { shape: [3, 5], lo: -3, hi: 3 } }, build: (b, v) => op.Sigmoid(b, v.x!) },
  { name: 'Tanh', inputs: { x: { shape: [3, 5] } }, build: (b, v) => op.Tanh(b, v.x!) },
  { name: 'Relu', inputs: { x: { shape: [4, 5], gap: 0.1 } }, build: (b, v) => op.Relu(b, v.x!) },
  { name: 'Abs', inputs: { x: { shape: [4, 5], gap: 0.1 } }, build: (b, v) => op.Abs(b, v.x!) },
  { name: 'Neg, Identity', inputs: { x: { shape: [4] } }, build: (b, v) => op.Identity(b, op.Neg(b, v.x!)) },
  { name: 'Exp', inputs: { x: { shape: [4, 3] } }, build: (b, v) => op.Exp(b, v.x!) },
  { name: 'Log', inputs: { x: { shape: [4, 3], lo: 0.5, hi: 2 } }, build: (b, v) => op.Log(b, v.x!) },
  { name: 'Softplus', inputs: { x: { shape: [4, 3], lo: -3, hi: 3 } }, build: (b, v) => op.Softplus(b, v.x!) },
  { name: 'Sqrt', inputs: { x: { shape: [4, 3], lo: 0.5, hi: 2 } }, build: (b, v) => op.Sqrt(b, v.x!) },
  { name: 'Reciprocal', inputs: { x: { shape: [4, 3], lo: 0.5, hi: 2 } }, build: (b, v) => op.Reciprocal(b, v.x!) },
  { name: 'Add/Sub broadcast', inputs: { a: { shape: [2, 3, 4] }, c: { shape: [3, 1] }, d: { shape: [4] } }, build: (b, v) => op.Sub(b, op.Add(b, v.a!, v.c!), v.d!) },
  { name: 'Mul/Div broadcast', inputs: { a: { shape: [2, 3, 4] }, c: { shape: [1, 3, 1], lo: 0.5, hi: 2 }, d: { shape: [2, 1, 4], lo: 0.5, hi: 2 } }, build: (b, v) => op.Div(b, op.Mul(b, v.a!, v.c!), v.d!) },
  { name: 'Sum of three', inputs: { a: { shape: [2, 3] }, c: { shape: [3] }, d: { shape: [2, 1] } }, build: (b, v) => op.Sum(b, [v.a!, v.c!, v.d!]) },
  { name: 'Where', inputs: { a: { shape: [3, 4] }, c: { shape: [3, 4] }, m: { shape: [3, 4], constant: true } }, build: (b, v) => op.Where(b, op.Greater(b, v.m!, b.constant([0], [])), v.a!, v.c!) },
  { name: 'ReduceMean keepdims', inputs: { x: { shape: [2, 3, 4, 2] } }, build: (b, v) => op.ReduceMean(b, v.x!, [0, 2, 3]) },
  { name: 'ReduceSum no keepdims', inputs: { x: { shape: [2, 3, 4] } }, build: (b, v) => op.ReduceSum(b, v.x!, [1], false) },
  { name: 'ReduceSumSquare', inputs: { x: { shape: [2, 3, 4] } }, build: (b, v) => op.ReduceSumSquare(b, v.x!, [0, 2]) },
  // compositions used by the models and losses
  { name: 'UNeXt shift along H, 7 channels in chunks 2-2-2-1', inputs: { x: { shape: [2, 7, 5, 4] } }, build: (b, v) => shift(b, v.x!, 2) },
  { name: 'GELU (erf form), op by op', inputs: { x: { shape: [3, 6], lo: -3, hi: 3 } }, build: (b, v) => gelu(b, v.x!) },
  { name: 'GELU composite (fused, lowered for ORT)', inputs: { x: { shape: [2, 3, 2, 3], lo: -4, hi: 4 } }, build: (b, v) => gelu(b, v.x!), prepare: (b) => expect(fuseGelu(b)).toBe(1) },
  // a smooth consumer: a Relu after it would put a kink at x = 0 where finite differences fail for inputs near 0
  { name: 'GELU composite on rows', inputs: { x: { shape: [5, 6], lo: -4, hi: 4 } }, build: (b, v) => op.Mul(b, gelu(b, v.x!), b.constant([1.5], [])), prepare: (b) => expect(fuseGelu(b)).toBe(1) },
  {
    name: 'train-mode BatchNorm',
    inputs: { x: { shape: [3, 2, 3, 3] }, s: { shape: [2] }, t: { shape: [2] } },
    build: (b, v) =>
      batchNormTrain(b, { x: v.x!, scale: v.s!, bias: v.t!, mean: b.constant([0, 0]), variance: b.constant([1, 1]), tracked: b.constant([0], []), eps: 1e-5, momentum: 0.1 }),
  },
  { name: 'BatchNormalization, inference mode', inputs: { x: { shape: [2, 3, 2, 2] }, s: { shape: [3] }, t: { shape: [3] } }, build: (b, v) => op.BatchNormalization(b, v.x!, v.s!, v.t!, b.constant([0.1, -0.2, 0.3]), b.constant([0.5, 1.5, 2]), 1e-5) },
  { name: 'BCE + Dice loss', inputs: { x: { shape: [2, 1, 4, 4], lo: -3, hi: 3 }, t: { shape: [2, 1, 4, 4], constant: true, choices: [0, 1] } }, build: (b, v) => bceDiceLoss(b, v.x!, v.t!) },
  { name: 'CE + Dice loss', inputs: { x: { shape: [2, 3, 3, 3], lo: -3, hi: 3 }, t: { shape: [2, 3, 3, 3], constant: true, choices: [0, 1] } }, build: (b, v) => diceCeLoss(b, v.x!, v.t!) },
  { name: 'TransUNet CE + Dice loss', inputs: { x: { shape: [2, 3, 3, 3], lo: -3, hi: 3 }, t: { shape: [2, 3, 3, 3], constant: true, choices: [0, 1] } }, build: (b, v) => transunetLoss(b, v.x!, v.t!) },
  { name: 'Conv grouped 3->2 per group, stride 2 (per-group dense gradients)', inputs: { x: { shape: [2, 6, 7, 7] }, w: { shape: [4, 3, 3, 3] }, b: { shape: [4] } }, build: (b, v) => conv(b, v.x!, v.w!, v.b!, { strides: [2, 2], pads: [1, 0, 1, 1], group: 2 }) },
  { name: 'Conv grouped 2->2 per group, 9 groups (one grouped Conv)', inputs: { x: { shape: [1, 18, 5, 5] }, w: { shape: [18, 2, 3, 3] } }, build: (b, v) => conv(b, v.x!, v.w!, null, { pads: [1, 1, 1, 1], group: 9 }) },
  { name: 'ConvTranspose grouped 2->3 per group k2 s2', inputs: { x: { shape: [2, 4, 3, 3] }, w: { shape: [4, 3, 2, 2] } }, build: (b, v) => convT(b, v.x!, v.w!, null, { kernel_shape: [2, 2], strides: [2, 2], group: 2 }) },
];

function fill(rng: Rng, n: number, f: Fill): Float32Array {
  const lo = f.lo ?? -1;
  const hi = f.hi ?? 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (f.choices) out[i] = f.choices[rng.int(f.choices.length)]!;
    else if (f.distinct) out[i] = lo + ((hi - lo) * (i + 0.5)) / n;
    else {
      let v = rng.uniform(lo, hi);
      while (f.gap && Math.abs(v) < f.gap) v = rng.uniform(lo, hi);
      out[i] = v;
    }
  }
  if (f.distinct) for (let i = n - 1; i > 0; i--) { const j = rng.int(i + 1); [out[i], out[j]] = [out[j]!, out[i]!]; } // shuffle
  return out;
}

interface CheckResult {
  /** The worst input tensor's max|fd − analytic| / max|analytic| (each tensor against its own gradient). */
  worst: number;
  /** Per differentiated input: that error and max|analytic|. */
  perInput: { name: string; err: number; scale: number }[];
  opTypes: Set<string>;
}

async function check(c: Case, seed: number): Promise<CheckResult> {
  const rng = new Rng(seed);
  const b = new GraphBuilder({ rng });
  const values: Record<string, Value> = {};
  const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
  for (const [name, spec] of Object.entries(c.inputs)) {
    values[name] = b.input(name, spec.shape);
    feeds[name] = { data: fill(rng, numel(spec.shape), spec), dims: spec.shape };
  }
  const forwardCount = b.nodes.length;
  const out = c.build(b, values);
  c.prepare?.(b);
  const opTypes = new Set(b.nodes.slice(forwardCount).map((n) => n.opType));
  const r = fill(rng, numel(out.shape), {});
  const seedInput = b.input('seed', out.shape);
  feeds.seed = { data: r, dims: out.shape as number[] };
  const wrt = Object.entries(c.inputs).filter(([, s]) => !s.constant).map(([n]) => values[n]!);
  const grads = backward(b, { value: out, grad: seedInput }, wrt);
  const outputs = new Map<string, Value>([['y', out]]);
  for (const v of wrt) outputs.set(`grad.${v.name}`, grads.get(v.name)!);
  const session = await NodeSession.create(encodeGraph(b, c.name, b.inputs, outputs), { threads: 1, optimization: 'disabled' });
  const analytic = await session.run(feeds);
  const f = async (): Promise<number> => {
    const y = (await session.run(feeds, ['y'])).y!.data;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += r[i]! * y[i]!;
    return s;
  };
  const h = c.h ?? 1e-2;
  const perInput: CheckResult['perInput'] = [];
  for (const v of wrt) {
    const g = analytic[`grad.${v.name}`]!.data;
    const x = feeds[v.name]!.data;
    let scale = 0;
    let worst = 0;
    for (const a of g) scale = Math.max(scale, Math.abs(a));
    // every coordinate of small inputs, a random subset of 48 of larger ones
    const coords = x.length <= 48 ? [...x.keys()] : Array.from({ length: 48 }, () => rng.int(x.length));
    for (const i of coords) {
      const orig = x[i]!;
      x[i] = orig + h;
      const fp = await f();
      x[i] = orig - h;
      const fm = await f();
      x[i] = orig;
      const fd = (fp - fm) / (2 * h);
      worst = Math.max(worst, Math.abs(fd - g[i]!));
    }
    perInput.push({ name: v.name, err: worst / Math.max(scale, 1e-6), scale });
  }
  await session.release();
  return { worst: Math.max(...perInput.map((p) => p.err)), perInput, opTypes };
}

/** A case's random inputs depend on its name only (FNV-1a), so adding or moving a line changes no other case. */
function seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

describe('gradient rules vs finite differences (ONNX Runtime, float32)', () => {
  const covered = new Set<string>();
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const res = await check(c, seedOf(c.name));
    res.opTypes.forEach((t) => covered.add(t));
    const detail = res.perInput.map((p) => `${p.name} ${p.err.toExponential(2)} (max |g| ${p.scale.toPrecision(3)})`).join(', ');
    if (process.env.GRADCHECK_VERBOSE) console.log(`${c.name}: ${detail}`);
    for (const p of res.perInput) expect(p.scale, `gradient of ${p.name} is not all zero`).toBeGreaterThan(0);
    expect(res.worst, `relative error per input: ${detail}`).toBeLessThan(c.tol ?? 2e-3);
  });

  it('covers every gradient rule', () => {
    const missing = [...GRADIENT_RULES.keys()].filter((t) => !covered.has(t));
    expect(missing).toEqual([]);
  });

  it('names the op when a rule is missing', () => {
    const b = new GraphBuilder({ rng: new Rng(0) });
    const x = b.input('x', [2, 2]);
    const y = b.op1('Tile', [x, b.int64([1, 2])]);
    expect(() => backward(b, { value: y }, [x])).toThrow(/no gradient rule for ONNX op Tile/);
  });
});
