// Typed emitters for the ONNX operators we use, spelled as ONNX spells them (opset 17).
import type { GraphBuilder } from '../ir/builder.ts';
import { attr, type Value } from '../ir/types.ts';

type B = GraphBuilder;

export interface ConvOptions {
  strides?: number[];
  pads?: number[];
  dilations?: number[];
  group?: number;
}

function convAttrs(w: Value, o: ConvOptions) {
  const k = w.shape.slice(2) as number[];
  return {
    kernel_shape: attr.ints(k),
    strides: attr.ints(o.strides ?? k.map(() => 1)),
    pads: attr.ints(o.pads ?? [...k, ...k].map(() => 0)),
    dilations: attr.ints(o.dilations ?? k.map(() => 1)),
    group: attr.int(o.group ?? 1),
  };
}

export const Conv = (b: B, x: Value, w: Value, bias: Value | null, o: ConvOptions = {}) =>
  b.op1('Conv', bias ? [x, w, bias] : [x, w], convAttrs(w, o));
export const ConvTranspose = (b: B, x: Value, w: Value, bias: Value | null, o: ConvOptions = {}) =>
  b.op1('ConvTranspose', bias ? [x, w, bias] : [x, w], convAttrs(w, o));

export const BatchNormalization = (b: B, x: Value, scale: Value, bias: Value, mean: Value, variance: Value, epsilon: number) =>
  b.op1('BatchNormalization', [x, scale, bias, mean, variance], { epsilon: attr.float(epsilon) });
export const LayerNormalization = (b: B, x: Value, scale: Value, bias: Value, epsilon: number, axis = -1) =>
  b.op1('LayerNormalization', [x, scale, bias], { epsilon: attr.float(epsilon), axis: attr.int(axis) });

const unary = (op: string) => (b: B, x: Value) => b.op1(op, [x]);
export const Relu = unary('Relu');
export const Sigmoid = unary('Sigmoid');
export const Erf = unary('Erf');
export const Neg = unary('Neg');
export const Exp = unary('Exp');
export const Log = unary('Log');
export const Abs = unary('Abs');
export const Sqrt = unary('Sqrt');
export const Reciprocal = unary('Reciprocal');
export const Identity = unary('Identity');
export const Softplus = unary('Softplus');
export const Shape = unary('Shape');

const binary = (op: string) => (b: B, x: Value, y: Value) => b.op1(op, [x, y]);
export const Add = binary('Add');
export const Sub = binary('Sub');
export const Mul = binary('Mul');
export const Div = binary('Div');
export const Pow = binary('Pow');
export const Max = binary('Max');
export const Min = binary('Min');
export const Equal = binary('Equal');
export const Greater = binary('Greater');
export const MatMul = binary('MatMul');
export const Where = (b: B, cond: Value, x: Value, y: Value) => b.op1('Where', [cond, x, y]);
export const Sum = (b: B, xs: Value[]) => (xs.length === 1 ? xs[0]! : b.op1('Sum', xs));

export const Softmax = (b: B, x: Value, axis = -1) => b.op1('Softmax', [x], { axis: attr.int(axis) });

export const MaxPool = (b: B, x: Value, kernel: number[], strides: number[]) =>
  b.op1('MaxPool', [x], { kernel_shape: attr.ints(kernel), strides: attr.ints(strides) });
export const AveragePool = (b: B, x: Value, kernel: number[], strides: number[]) =>
  b.op1('AveragePool', [x], { kernel_shape: attr.ints(kernel), strides: attr.ints(strides) });

export const Concat = (b: B, xs: Value[], axis: number) => b.op1('Concat', xs, { axis: attr.int(axis) });
export const Split = (b: B, x: Value, sizes: number[], axis: number) =>
  b.op('Split', [x, b.int64(sizes)], { axis: attr.int(axis) }, sizes.length);
export const Slice = (b: B, x: Value, starts: number[], ends: number[], axes: number[], steps?: number[]) =>
  b.op1('Slice', [x, b.int64(starts), b.int64(ends), b.int64(axes), ...(steps ? [b.int64(steps)] : [])]);

/** Reshape to a fixed target; 0 copies the input dim, -1 is inferred (the dynamic batch). */
export const Reshape = (b: B, x: Value, shape: number[]) => b.op1('Reshape', [x, b.int64(shape)]);
/** Reshape to the run-time shape of `like` (gradients of reshapes with a dynamic batch). */
export const ReshapeLike = (b: B, x: Value, like: Value) => {
  const out = b.op1('Reshape', [x, b.op1('Shape', [like])]);
  return out;
};
export const Transpose = (b: B, x: Value, perm: number[]) => b.op1('Transpose', [x], { perm: attr.ints(perm) });
export const Tile = (b: B, x: Value, repeats: number[]) => b.op1('Tile', [x, b.int64(repeats)]);
export const Expand = (b: B, x: Value, shape: number[]) => b.op1('Expand', [x, b.int64(shape)]);

/** Gemm over 2-D operands: alpha·A'·B' + C. */
export const Gemm = (b: B, a: Value, w: Value, c: Value | null, o: { transA?: boolean; transB?: boolean } = {}) =>
  b.op1('Gemm', c ? [a, w, c] : [a, w], { transA: attr.int(o.transA ? 1 : 0), transB: attr.int(o.transB ? 1 : 0) });

export const ReduceMean = (b: B, x: Value, axes: number[], keepdims = true) =>
  b.op1('ReduceMean', [x], { axes: attr.ints(axes), keepdims: attr.int(keepdims ? 1 : 0) });
export const ReduceSum = (b: B, x: Value, axes: number[], keepdims = true) =>
  b.op1('ReduceSum', [x, b.int64(axes)], { keepdims: attr.int(keepdims ? 1 : 0) });

/** Bilinear resize by integer scales; `alignCorners` matches PyTorch's align_corners=True. */
export const ResizeLinear = (b: B, x: Value, scales: number[], alignCorners: boolean) =>
  b.op1('Resize', [x, null, b.constant(scales)], {
    mode: attr.string('linear'),
    coordinate_transformation_mode: attr.string(alignCorners ? 'align_corners' : 'half_pixel'),
  });
export const ResizeNearest = (b: B, x: Value, scales: number[]) =>
  b.op1('Resize', [x, null, b.constant(scales)], {
    mode: attr.string('nearest'),
    coordinate_transformation_mode: attr.string('asymmetric'),
    nearest_mode: attr.string('floor'),
  });

// --- emitters used by autodiff, losses and optimizers (appended) ---
export const Sign = unary('Sign');
export const Tanh = unary('Tanh');
export const Not = unary('Not');
export const Less = binary('Less');
export const GreaterOrEqual = binary('GreaterOrEqual');
export const LogSoftmax = (b: B, x: Value, axis = -1) => b.op1('LogSoftmax', [x], { axis: attr.int(axis) });
export const ReduceSumSquare = (b: B, x: Value, axes: number[], keepdims = true) =>
  b.op1('ReduceSumSquare', [x], { axes: attr.ints(axes), keepdims: attr.int(keepdims ? 1 : 0) });
export const ReduceMax = (b: B, x: Value, axes: number[], keepdims = true) =>
  b.op1('ReduceMax', [x], { axes: attr.ints(axes), keepdims: attr.int(keepdims ? 1 : 0) });
/** Constant zero padding: `pads` = [begin per axis..., end per axis...]. */
export const Pad = (b: B, x: Value, pads: number[]) => b.op1('Pad', [x, b.int64(pads)]);
export const Gather = (b: B, x: Value, indices: Value, axis = 0) => b.op1('Gather', [x, indices], { axis: attr.int(axis) });
export const SpaceToDepth = (b: B, x: Value, blocksize: number) => b.op1('SpaceToDepth', [x], { blocksize: attr.int(blocksize) });
export const DepthToSpace = (b: B, x: Value, blocksize: number) =>
  b.op1('DepthToSpace', [x], { blocksize: attr.int(blocksize), mode: attr.string('DCR') });
export const ArgMax = (b: B, x: Value, axis: number, keepdims = true) =>
  b.op1('ArgMax', [x], { axis: attr.int(axis), keepdims: attr.int(keepdims ? 1 : 0) });
/** Cast to float32 (1), int64 (7) or bool (9). */
export const Cast = (b: B, x: Value, to: 'float32' | 'int64' | 'bool') =>
  b.op1('Cast', [x], { to: attr.int(to === 'float32' ? 1 : to === 'int64' ? 7 : 9) });
/** LayerNormalization with its optional Mean and InvStdDev outputs (stash type float32). */
export const LayerNormalizationStats = (b: B, x: Value, scale: Value, bias: Value | null, epsilon: number, axis = -1) =>
  b.op('LayerNormalization', bias ? [x, scale, bias] : [x, scale], { epsilon: attr.float(epsilon), axis: attr.int(axis) }, 3);
