// Gradient rules: one entry per ONNX op type, and the only place that knows derivatives.
// A rule gets the forward node and dL/d(outputs) and returns dL/d(inputs). It may return a gradient in the
// broadcast (output) shape: the engine sums it back to the input's shape, and sums fan-out.
import { clampSliceIndex, floatAttr, int64Values, intAttr, intsAttr, normalizeAxis, reducedAxes, stringAttr } from '../ir/attrs.ts';
import type { GraphBuilder } from '../ir/builder.ts';
import { attr, type GraphNode, type Value } from '../ir/types.ts';
import * as op from '../ops/index.ts';
import { convInputGrad, convWeightGrad, type ConvGeometry } from './conv-grads.ts';
import { interpolationMatrix } from './resize.ts';

export interface GradContext {
  readonly b: GraphBuilder;
  readonly node: GraphNode;
  /** Forward inputs (undefined for an omitted optional input). */
  readonly inputs: readonly (Value | undefined)[];
  readonly outputs: readonly Value[];
  /** dL/d(output i); null where no gradient reaches the loss. */
  readonly grads: readonly (Value | null)[];
  /** Whether input i needs a gradient (it depends on a parameter and reaches the loss). */
  readonly needs: readonly boolean[];
}

/** dL/d(input i), or null/undefined where not needed. */
export type GradRule = (c: GradContext) => (Value | null | undefined)[];

// --- helpers ---------------------------------------------------------------
const x = (c: GradContext, i: number): Value => {
  const v = c.inputs[i];
  if (!v) throw new Error(`${c.node.opType} ${c.node.name}: input ${i} is missing`);
  return v;
};
const dy = (c: GradContext): Value => c.grads[0]!;
const y = (c: GradContext): Value => c.outputs[0]!;
const k = (c: GradContext, v: number): Value => c.b.constant([v], []);
/** The values of constant int64 input i (axes, starts, ends). */
const constInts = (c: GradContext, i: number): number[] => {
  const v = c.inputs[i];
  return int64Values(v ? c.b.constants.get(v.name)?.data : undefined, `${c.node.opType} ${c.node.name}: input ${i}`);
};
const fixedShape = (v: Value): number[] =>
  v.shape.map((d) => {
    if (typeof d !== 'number') throw new Error(`gradient needs a fixed shape, ${v.name} has [${v.shape.join(',')}]`);
    return d;
  });
/** Swaps the last two axes. */
const transposeLast = (b: GraphBuilder, v: Value): Value => {
  const r = v.shape.length;
  return op.Transpose(b, v, [...Array(r - 2).keys(), r - 1, r - 2]);
};
/** The gradient of a reduction: dy with the reduced axes restored as 1, expanded to the input's shape. */
const unreduce = (b: GraphBuilder, g: Value, input: Value, axes: number[], keepdims: boolean): Value => {
  const all = reducedAxes(axes, input.shape.length);
  const kept = input.shape.map((d, i) => (all.includes(i) ? 1 : d)) as number[];
  const shaped = keepdims ? g : op.Reshape(b, g, kept);
  return op.Expand(b, shaped, fixedShape(input));
};

function convGeometry(c: GradContext, w: Value): ConvGeometry {
  const ks = intsAttr(c.node, 'kernel_shape', fixedShape(w).slice(2));
  if (ks.length !== 2) throw new Error(`${c.node.opType} gradient supports 2-D convolutions only`);
  if (stringAttr(c.node, 'auto_pad', 'NOTSET') !== 'NOTSET') throw new Error(`${c.node.opType} gradient needs explicit pads (auto_pad unsupported)`);
  return {
    kernel: [ks[0]!, ks[1]!],
    strides: intsAttr(c.node, 'strides', [1, 1]) as [number, number],
    pads: intsAttr(c.node, 'pads', [0, 0, 0, 0]) as [number, number, number, number],
    dilations: intsAttr(c.node, 'dilations', [1, 1]) as [number, number],
    group: intAttr(c.node, 'group', 1),
  };
}

/** g where `mask` holds, else 0. As g·float(mask): ORT's Where with a scalar branch takes 2.5x as long as Cast + Mul. */
const maskedBy = (b: GraphBuilder, g: Value, mask: Value): Value => op.Mul(b, g, op.Cast(b, mask, 'float32'));

const biasGrad = (b: GraphBuilder, g: Value): Value => op.ReduceSum(b, g, [0, 2, 3], false);

/** x·scale + bias along axis 1 in one pass: BatchNormalization with mean 0, variance 1 and epsilon 0. */
function channelAffine(b: GraphBuilder, v: Value, scale: Value, bias: Value): Value {
  const c = fixedShape(scale)[0]!;
  return op.BatchNormalization(b, v, scale, bias, b.constant(new Float32Array(c), [c]), b.constant(new Float32Array(c).fill(1), [c]), 0);
}

/**
 * When `v` is the output of a Gelu whose only consumer is this BatchNormalization, Gelu(its input) recomputed
 * for the backward: then `v` need not be kept from the forward to the backward (MobileUtr at batch 8, 256x256:
 * 15 such tensors, 312 MiB; peak RSS of a step 3.34 -> 3.12 GB, for two passes over each). Recomputing the Gelu
 * inputs of Conv and Gemm weight gradients the same way did not lower the peak further. The Add of an unshared zero keeps ONNX Runtime's common
 * subexpression elimination from merging the recomputation back into the forward Gelu; x + 0 = x exactly.
 */
function recomputedGelu(b: GraphBuilder, v: Value): Value | undefined {
  const producer = b.nodes.find((n) => n.outputs.includes(v.name));
  if (producer?.opType !== 'Gelu' || b.nodes.filter((n) => n.inputs.includes(v.name)).length !== 1) return undefined;
  const source = b.value(producer.inputs[0]!);
  const ch = source.shape[1];
  if (typeof ch !== 'number' || source.shape.length < 2) return undefined;
  const zero = b.constant(new Float32Array(ch), [1, ch, ...source.shape.slice(2).map(() => 1)], { shared: false });
  return b.op1('Gelu', [op.Add(b, source, zero)]);
}

/**
 * BatchNormalization, train mode (batch statistics from outputs 1 and 2, see src/nn/batchnorm-train.ts) or
 * inference mode: x̂ is recomputed by a unit-scale BatchNormalization, then
 * dx = g·(dy − Σdy/M − x̂·Σ(dy·x̂)/M) (train) or g·dy (inference), g = scale/√(var + eps); three passes over
 * dy-sized tensors beside the reductions, against ~12 for autodiff of the decomposed form.
 */
function batchNormGrad(c: GradContext): (Value | null)[] {
  const { b } = c;
  const input = x(c, 0);
  const [n, ch, ...spatial] = fixedShape(input);
  const training = intAttr(c.node, 'training_mode', 0) === 1;
  if (c.needs[3] || c.needs[4]) throw new Error('BatchNormalization gradient w.r.t. mean or variance inputs is not supported');
  const [mean, variance] = training ? [c.outputs[1], c.outputs[2]] : [x(c, 3), x(c, 4)];
  if (!mean || !variance) throw new Error('train-mode BatchNormalization gradient needs the batch mean and variance outputs');
  const eps = floatAttr(c.node, 'epsilon', 1e-5);
  const axes = [0, ...spatial.map((_, i) => i + 2)];
  const perChannel = [1, ch!, ...spatial.map(() => 1)];
  const count = n! * spatial.reduce((a, d) => a * d, 1);
  const g = dy(c);
  const needXhat = c.needs[1] || (c.needs[0] && training);
  const xhat = needXhat
    ? op.BatchNormalization(b, recomputedGelu(b, input) ?? input, b.constant(new Float32Array(ch!).fill(1), [ch!]), b.constant(new Float32Array(ch!), [ch!]), mean, variance, eps)
    : null;
  const dbias = c.needs[2] || (c.needs[0] && training) ? op.ReduceSum(b, g, axes, false) : null;
  const dscale = needXhat ? op.ReduceSum(b, op.Mul(b, g, xhat!), axes, false) : null;
  let dx: Value | null = null;
  if (c.needs[0]) {
    const gain = op.Mul(b, x(c, 1), op.Reciprocal(b, op.Sqrt(b, op.Add(b, variance, k(c, eps)))));
    if (!training) dx = op.Mul(b, g, op.Reshape(b, gain, perChannel));
    else {
      const t = op.Sub(b, g, op.Mul(b, xhat!, op.Reshape(b, op.Mul(b, dscale!, k(c, 1 / count)), perChannel)));
      dx = channelAffine(b, t, gain, op.Mul(b, op.Mul(b, gain, dbias!), k(c, -1 / count)));
    }
  }
  return [dx, c.needs[1] ? dscale : null, c.needs[2] ? dbias : null, null, null];
}

/** Places dy (the result of a Slice) back into a zero tensor of the input's shape; any steps. */
function sliceGrad(c: GradContext): Value {
  const { b } = c;
  const input = x(c, 0);
  const shape = fixedShape(input);
  const starts = constInts(c, 1);
  const ends = constInts(c, 2);
  const axes = c.inputs[3] ? constInts(c, 3) : starts.map((_, i) => i);
  const steps = c.inputs[4] ? constInts(c, 4) : starts.map(() => 1);
  let g = dy(c);
  axes.forEach((a, i) => {
    const ax = normalizeAxis(a, shape.length);
    const n = shape[ax]!;
    const step = steps[i]!;
    const m = fixedShape(g)[ax]!;
    if (m === 0) throw new Error('Slice gradient of an empty slice');
    let first = clampSliceIndex(starts[i]!, n, step);
    let stride = step;
    if (step < 0) {
      // reversed slice: flip dy and walk forward from the last element taken
      g = op.Slice(b, g, [-1], [-(2 ** 62)], [ax], [-1]);
      first = first + (m - 1) * step;
      stride = -step;
    }
    const cur = fixedShape(g);
    if (stride > 1) {
      // interleave stride-1 zeros after every element: [.., m, ..] -> [.., m, stride, ..] -> [.., m·stride, ..]
      const withAxis = [...cur.slice(0, ax + 1), 1, ...cur.slice(ax + 1)];
      const pads = withAxis.map(() => 0).concat(withAxis.map(() => 0));
      pads[withAxis.length + ax + 1] = stride - 1;
      g = op.Pad(b, op.Reshape(b, g, withAxis), pads);
      g = op.Reshape(b, g, [...cur.slice(0, ax), m * stride, ...cur.slice(ax + 1)]);
    }
    const len = fixedShape(g)[ax]!;
    const after = n - first - len;
    if (after < 0) g = op.Slice(b, g, [0], [len + after], [ax]);
    const pads = cur.map(() => 0).concat(cur.map(() => 0));
    pads[ax] = first;
    pads[cur.length + ax] = Math.max(0, after);
    if (first > 0 || after > 0) g = op.Pad(b, g, pads);
  });
  return g;
}

// --- the table ---------------------------------------------------------------
export const GRADIENT_RULES: ReadonlyMap<string, GradRule> = new Map<string, GradRule>([
  ['Identity', (c) => [dy(c)]],
  ['Neg', (c) => [op.Neg(c.b, dy(c))]],
  ['Add', (c) => [dy(c), dy(c)]],
  ['Sub', (c) => [dy(c), c.needs[1] ? op.Neg(c.b, dy(c)) : null]],
  ['Sum', (c) => c.inputs.map(() => dy(c))],
  ['Mul', (c) => [c.needs[0] ? op.Mul(c.b, dy(c), x(c, 1)) : null, c.needs[1] ? op.Mul(c.b, dy(c), x(c, 0)) : null]],
  // d(a/b) = dy/b, -dy·y/b
  ['Div', (c) => [c.needs[0] ? op.Div(c.b, dy(c), x(c, 1)) : null, c.needs[1] ? op.Neg(c.b, op.Div(c.b, op.Mul(c.b, dy(c), y(c)), x(c, 1))) : null]],
  ['Where', (c) => [null, c.needs[1] ? maskedBy(c.b, dy(c), x(c, 0)) : null, c.needs[2] ? maskedBy(c.b, dy(c), op.Not(c.b, x(c, 0))) : null]],
  ['Relu', (c) => [maskedBy(c.b, dy(c), op.Greater(c.b, y(c), k(c, 0)))]],
  ['Sigmoid', (c) => [op.Mul(c.b, dy(c), op.Mul(c.b, y(c), op.Sub(c.b, k(c, 1), y(c))))]],
  ['Tanh', (c) => [op.Mul(c.b, dy(c), op.Sub(c.b, k(c, 1), op.Mul(c.b, y(c), y(c))))]],
  // erf'(u) = 2/√π·exp(-u²) = exp(ln(2/√π) - u²)
  ['Erf', (c) => [op.Mul(c.b, dy(c), op.Exp(c.b, op.Sub(c.b, k(c, Math.log(2 / Math.sqrt(Math.PI))), op.Mul(c.b, x(c, 0), x(c, 0)))))]],
  // the composite GELU x·Φ(x) (composites.ts), recomputed from x alone: dx = dy·(Φ(x) + x·φ(x)) with
  // Φ = ½erf(x/√2) + ½ (one channel affine on feature maps) and x·φ(x) = x·exp(ln(1/√(2π)) − (x/√2)²)
  ['Gelu', (c) => {
    const { b } = c;
    const input = x(c, 0);
    const shape = fixedShape(input);
    const u = op.Mul(b, input, k(c, Math.SQRT1_2));
    const erf = op.Erf(b, u);
    const pdf = op.Exp(b, op.Sub(b, k(c, -0.5 * Math.log(2 * Math.PI)), op.Mul(b, u, u)));
    const xpdf = op.Mul(b, input, pdf);
    const half = b.constant(new Float32Array(shape[1]!).fill(0.5), [shape[1]!]);
    const slope =
      shape.length > 2 ? op.Add(b, channelAffine(b, erf, half, half), xpdf) : op.Sum(b, [op.Mul(b, erf, k(c, 0.5)), xpdf, k(c, 0.5)]);
    return [op.Mul(b, dy(c), slope)];
  }],
  // the composite O = Softmax(S)·V with P = Softmax(S) as its second output (composites.ts):
  // dV = Pᵀ·dO, dS = P∘(dP − rowsum(dO∘O)) with dP = dO·Vᵀ (rowsum(dP∘P) = rowsum(dO∘O))
  ['SoftmaxMatMul', (c) => {
    const { b } = c;
    const [o, p] = c.outputs as [Value, Value];
    const dO = c.grads[0];
    const dV = c.needs[1] && dO ? op.MatMul(b, transposeLast(b, p), dO) : null;
    if (!c.needs[0]) return [null, dV];
    const fromO = dO ? op.MatMul(b, dO, transposeLast(b, x(c, 1))) : null;
    const dP = fromO && c.grads[1] ? op.Add(b, fromO, c.grads[1]) : (fromO ?? c.grads[1]!);
    const rowDot = c.grads[1] ? op.ReduceSum(b, op.Mul(b, dP, p), [-1]) : op.ReduceSum(b, op.Mul(b, dO!, o), [-1]);
    return [op.Mul(b, p, op.Sub(b, dP, rowDot)), dV];
  }],
  // the composite O = Softmax(scale·A·B)·V (composites.ts), P recomputed with the scale on B:
  // dV = Pᵀ·dO, dS = P∘(dP − rowsum(dO∘O)) with dP = dO·Vᵀ, dA = dS·(scale·B)ᵀ, dB = (scale·A)ᵀ·dS
  ['Attention', (c) => {
    const { b } = c;
    const [a, bm, v] = [x(c, 0), x(c, 1), x(c, 2)];
    const scale = floatAttr(c.node, 'scale', 1);
    const dO = dy(c);
    // the scale as scale + 0·Σ dO (exact for finite dO): a node CSE cannot merge with the forward's, and a data
    // dependence that keeps the recompute in the backward whatever order ONNX Runtime runs nodes in
    const scaleAfterDO = op.Add(b, k(c, scale), op.Mul(b, op.ReduceSum(b, dO, [...dO.shape.keys()], false), k(c, 0)));
    const scaledB = op.Mul(b, bm, scaleAfterDO);
    const p = op.Softmax(b, op.MatMul(b, a, scaledB), -1);
    const dV = c.needs[2] ? op.MatMul(b, transposeLast(b, p), dO) : null;
    if (!c.needs[0] && !c.needs[1]) return [null, null, dV];
    const dP = op.MatMul(b, dO, transposeLast(b, v));
    const dS = op.Mul(b, p, op.Sub(b, dP, op.ReduceSum(b, op.Mul(b, dO, y(c)), [-1])));
    const dA = c.needs[0] ? op.MatMul(b, dS, transposeLast(b, scaledB)) : null;
    const dB = c.needs[1] ? op.MatMul(b, transposeLast(b, op.Mul(b, a, scaleAfterDO)), dS) : null;
    return [dA, dB, dV];
  }],
  ['Exp', (c) => [op.Mul(c.b, dy(c), y(c))]],
  ['Log', (c) => [op.Div(c.b, dy(c), x(c, 0))]],
  ['Abs', (c) => [op.Mul(c.b, dy(c), op.Sign(c.b, x(c, 0)))]],
  ['Softplus', (c) => [op.Mul(c.b, dy(c), op.Sigmoid(c.b, x(c, 0)))]],
  ['Sqrt', (c) => [op.Div(c.b, dy(c), op.Add(c.b, y(c), y(c)))]],
  ['Reciprocal', (c) => [op.Neg(c.b, op.Mul(c.b, dy(c), op.Mul(c.b, y(c), y(c))))]],
  // softmax: y·(dy − Σ dy·y); log-softmax: dy − exp(y)·Σ dy
  ['Softmax', (c) => {
    const axis = intAttr(c.node, 'axis', -1);
    return [op.Mul(c.b, y(c), op.Sub(c.b, dy(c), op.ReduceSum(c.b, op.Mul(c.b, dy(c), y(c)), [axis])))];
  }],
  ['LogSoftmax', (c) => {
    const axis = intAttr(c.node, 'axis', -1);
    return [op.Sub(c.b, dy(c), op.Mul(c.b, op.Exp(c.b, y(c)), op.ReduceSum(c.b, dy(c), [axis])))];
  }],
  ['ReduceSum', (c) => [unreduce(c.b, dy(c), x(c, 0), c.inputs[1] ? constInts(c, 1) : [], intAttr(c.node, 'keepdims', 1) === 1)]],
  ['ReduceMean', (c) => {
    const input = x(c, 0);
    const count = fixedShape(input).reduce((a, d) => a * d, 1) / fixedShape(y(c)).reduce((a, d) => a * d, 1);
    return [unreduce(c.b, op.Mul(c.b, dy(c), k(c, 1 / count)), input, intsAttr(c.node, 'axes', []), intAttr(c.node, 'keepdims', 1) === 1)];
  }],
  ['ReduceSumSquare', (c) => {
    const g = unreduce(c.b, dy(c), x(c, 0), intsAttr(c.node, 'axes', []), intAttr(c.node, 'keepdims', 1) === 1);
    return [op.Mul(c.b, op.Mul(c.b, g, x(c, 0)), k(c, 2))];
  }],
  ['Reshape', (c) => [op.Reshape(c.b, dy(c), fixedShape(x(c, 0)))]],
  ['Transpose', (c) => {
    const perm = intsAttr(c.node, 'perm', [...x(c, 0).shape.keys()].reverse());
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [op.Transpose(c.b, dy(c), inverse)];
  }],
  ['Expand', (c) => [dy(c), null]],
  ['Concat', (c) => {
    const axis = normalizeAxis(intAttr(c.node, 'axis', 0), x(c, 0).shape.length);
    const sizes = c.inputs.map((v) => fixedShape(v!)[axis]!);
    if (c.needs.every(Boolean)) return op.Split(c.b, dy(c), sizes, axis);
    let offset = 0;
    return sizes.map((s, i) => {
      const start = offset;
      offset += s;
      return c.needs[i] ? op.Slice(c.b, dy(c), [start], [start + s], [axis]) : null;
    });
  }],
  ['Split', (c) => {
    const axis = normalizeAxis(intAttr(c.node, 'axis', 0), x(c, 0).shape.length);
    const parts = c.outputs.map((o, i) => c.grads[i] ?? op.Expand(c.b, k(c, 0), fixedShape(o)));
    return [op.Concat(c.b, parts, axis), null];
  }],
  ['Slice', (c) => [sliceGrad(c)]],
  // constant-mode Pad with pads >= 0: dy cropped back to the input (the padding constant gets no gradient)
  ['Pad', (c) => {
    const shape = fixedShape(x(c, 0));
    const pads = constInts(c, 1);
    if (stringAttr(c.node, 'mode', 'constant') !== 'constant' || pads.some((p) => p < 0) || c.inputs[3]) throw new Error('Pad gradient supports constant mode with pads >= 0 on all axes');
    const axes = shape.map((_, i) => i).filter((i) => pads[i] !== 0 || pads[i + shape.length] !== 0);
    return [axes.length ? op.Slice(c.b, dy(c), axes.map((i) => pads[i]!), axes.map((i) => pads[i]! + shape[i]!), axes) : dy(c), null, null];
  }],
  ['MatMul', (c) => {
    const [a, bm] = [x(c, 0), x(c, 1)];
    if (a.shape.length < 2 || bm.shape.length < 2) throw new Error('MatMul gradient needs operands of rank >= 2');
    return [
      c.needs[0] ? op.MatMul(c.b, dy(c), transposeLast(c.b, bm)) : null,
      c.needs[1] ? op.MatMul(c.b, transposeLast(c.b, a), dy(c)) : null,
    ];
  }],
  // Y = alpha·A'·B' + beta·C with A' = transA ? Aᵀ : A
  ['Gemm', (c) => {
    const { b } = c;
    const [a, bm] = [x(c, 0), x(c, 1)];
    const ta = intAttr(c.node, 'transA', 0) === 1;
    const tb = intAttr(c.node, 'transB', 0) === 1;
    const alpha = floatAttr(c.node, 'alpha', 1);
    const beta = floatAttr(c.node, 'beta', 1);
    const g = alpha === 1 ? dy(c) : op.Mul(b, dy(c), k(c, alpha));
    const da = !c.needs[0] ? null : ta ? op.Gemm(b, bm, g, null, { transA: tb, transB: true }) : op.Gemm(b, g, bm, null, { transB: !tb });
    const db = !c.needs[1] ? null : tb ? op.Gemm(b, g, a, null, { transA: true, transB: ta }) : op.Gemm(b, a, g, null, { transA: !ta });
    const dc = c.needs[2] ? (beta === 1 ? dy(c) : op.Mul(b, dy(c), k(c, beta))) : null;
    return [da, db, dc];
  }],
  ['Conv', (c) => {
    const [input, w] = [x(c, 0), x(c, 1)];
    const g = convGeometry(c, w);
    return [
      c.needs[0] ? convInputGrad(c.b, dy(c), w, fixedShape(input), g) : null,
      c.needs[1] ? convWeightGrad(c.b, input, dy(c), fixedShape(w), g) : null,
      c.needs[2] ? biasGrad(c.b, dy(c)) : null,
    ];
  }],
  // ConvTranspose is the adjoint of Conv with the same weight and attributes.
  ['ConvTranspose', (c) => {
    const [input, w] = [x(c, 0), x(c, 1)];
    const g = convGeometry(c, w);
    return [
      c.needs[0] ? op.Conv(c.b, dy(c), w, null, { strides: g.strides, pads: g.pads, dilations: g.dilations, group: g.group }) : null,
      c.needs[1] ? convWeightGrad(c.b, dy(c), input, fixedShape(w), g) : null,
      c.needs[2] ? biasGrad(c.b, dy(c)) : null,
    ];
  }],
  ['BatchNormalization', batchNormGrad],
  // Non-overlapping max-pooling: each window's gradient goes to its FIRST max in row-major order, as PyTorch routes
  // it. Ties are common on real images: a flat region (an ultrasound's black margin, a saturated spot) gives exactly
  // equal activations, and an Equal mask would hand each tied pixel the full gradient (BUSI at 128²: layer1's
  // gradients off by up to 58 %). ONNX MaxPool's Indices output is that first max (ORT keeps a max until a strictly
  // greater value comes), and MaxUnpool scatters dy to those indices: 65 / 41 ms at [8,16,256,256], 1 / 2 threads,
  // against 122 / 112 ms for ArgMax over SpaceToDepth and DepthToSpace (npm run bench:ops -- --only 'grad:').
  ['MaxPool', (c) => {
    const kernel = intsAttr(c.node, 'kernel_shape', []);
    const strides = intsAttr(c.node, 'strides', kernel.map(() => 1));
    const pads = intsAttr(c.node, 'pads', [0, 0, 0, 0]);
    if (kernel.length !== 2 || kernel.some((v, i) => v !== strides[i]) || pads.some((p) => p !== 0) || intAttr(c.node, 'ceil_mode', 0))
      throw new Error('MaxPool gradient supports kernel = stride, no padding, floor mode');
    const input = x(c, 0);
    const geometry = { kernel_shape: attr.ints(kernel), strides: attr.ints(strides) };
    // recomputed rather than taken from the forward node: the int64 indices would be kept from forward to backward
    const [, first] = c.b.op('MaxPool', [input], geometry, 2);
    return [c.b.op1('MaxUnpool', [dy(c), first!, c.b.int64(fixedShape(input))], geometry)];
  }],
  ['AveragePool', (c) => {
    const kernel = intsAttr(c.node, 'kernel_shape', []);
    const strides = intsAttr(c.node, 'strides', kernel.map(() => 1));
    if (kernel.length !== 2 || kernel.some((v, i) => v !== strides[i]) || intsAttr(c.node, 'pads', [0, 0, 0, 0]).some((p) => p !== 0))
      throw new Error('AveragePool gradient supports kernel = stride, no padding');
    return [op.Mul(c.b, op.ResizeNearest(c.b, dy(c), [1, 1, ...kernel]), k(c, 1 / (kernel[0]! * kernel[1]!)))];
  }],
  ['Resize', (c) => {
    const input = x(c, 0);
    const [, , h, w] = fixedShape(input);
    const [, , ho, wo] = fixedShape(y(c));
    const mode = stringAttr(c.node, 'mode', 'nearest');
    const coords = stringAttr(c.node, 'coordinate_transformation_mode', 'half_pixel');
    if (input.shape.length !== 4) throw new Error('Resize gradient supports 4-D tensors');
    if (mode === 'nearest' && coords === 'asymmetric' && stringAttr(c.node, 'nearest_mode', 'round_prefer_floor') === 'floor' && ho! % h! === 0 && wo! % w! === 0) {
      // each input pixel is copied into an (sh × sw) block: sum the block
      const sh = ho! / h!;
      const sw = wo! / w!;
      return [op.Mul(c.b, op.AveragePool(c.b, dy(c), [sh, sw], [sh, sw]), k(c, sh * sw))];
    }
    if (mode === 'linear') {
      // Y = Mh·X·Mwᵀ, so dX = Mhᵀ·dY·Mw (exact, dense constant matrices)
      const mw = c.b.constant(interpolationMatrix(w!, wo!, coords), [wo!, w!]);
      const mht = c.b.constant(interpolationMatrix(h!, ho!, coords, true), [h!, ho!]);
      return [op.MatMul(c.b, mht, op.MatMul(c.b, dy(c), mw))];
    }
    throw new Error(`Resize gradient: mode ${mode} with ${coords} is not supported`);
  }],
  // LayerNormalization: recompute x̂ and 1/σ with a unit-scale LayerNormalization, then
  // dx = (1/σ)·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·scale
  ['LayerNormalization', (c) => {
    const { b } = c;
    const input = x(c, 0);
    const shape = fixedShape(input);
    const axis = normalizeAxis(intAttr(c.node, 'axis', -1), shape.length);
    const normAxes = [...Array(shape.length - axis).keys()].map((i) => axis + i);
    const outerAxes = [...Array(axis).keys()];
    const featureShape = shape.slice(axis);
    const [xhat, , invStd] = op.LayerNormalizationStats(b, input, b.constant(new Float32Array(featureShape.reduce((a, d) => a * d, 1)).fill(1), featureShape), null, floatAttr(c.node, 'epsilon', 1e-5), axis);
    const g = op.Mul(b, dy(c), x(c, 1));
    const dx = c.needs[0]
      ? op.Mul(b, invStd!, op.Sub(b, op.Sub(b, g, op.ReduceMean(b, g, normAxes)), op.Mul(b, xhat!, op.ReduceMean(b, op.Mul(b, g, xhat!), normAxes))))
      : null;
    const dscale = c.needs[1] ? op.ReduceSum(b, op.Mul(b, dy(c), xhat!), outerAxes, false) : null;
    const dbias = c.needs[2] ? op.ReduceSum(b, dy(c), outerAxes, false) : null;
    return [dx, dscale, dbias];
  }],
]);

/** The rule for `opType`; a missing rule is an error naming the op. */
export function gradientRule(node: GraphNode): GradRule {
  const rule = GRADIENT_RULES.get(node.opType);
  if (!rule) throw new Error(`no gradient rule for ONNX op ${node.opType} (node ${node.name})`);
  return rule;
}
