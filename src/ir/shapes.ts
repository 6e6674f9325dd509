// Shape inference: one table from ONNX op type to shape rule, for every op that model, gradient, loss and
// optimizer graphs emit. The builder calls inferShapes on each node; a missing rule is an error naming the op.
import { clampSliceIndex, int64Values, intAttr, intsAttr, normalizeAxis, reducedAxes } from './attrs.ts';
import { broadcastShapes, dimDivide, dimProduct } from './dims.ts';
import type { Attributes, DType, Dim, TensorData, Value } from './types.ts';

export interface InferredOutput {
  shape: Dim[];
  dtype: DType;
}

export interface ShapeContext {
  inputs: readonly (Value | undefined)[];
  attrs: Attributes;
  /** The data of a constant input, when it is one. */
  constantOf(index: number): TensorData | undefined;
  numOutputs: number;
}

export type ShapeRule = (ctx: ShapeContext) => InferredOutput[];

const input = (ctx: ShapeContext, i: number): Value => {
  const v = ctx.inputs[i];
  if (!v) throw new Error(`missing input ${i}`);
  return v;
};
const constInts = (ctx: ShapeContext, i: number): number[] => int64Values(ctx.constantOf(i), `input ${i}`);
const fixed = (d: Dim): number => {
  if (typeof d !== 'number') throw new Error('needs a fixed dim');
  return d;
};

const sameAsFirst: ShapeRule = (ctx) => [{ shape: [...input(ctx, 0).shape], dtype: input(ctx, 0).dtype }];
const broadcast =
  (dtype?: DType): ShapeRule =>
  (ctx) => {
    let shape: Dim[] = [...input(ctx, 0).shape];
    for (let i = 1; i < ctx.inputs.length; i++) shape = broadcastShapes(shape, input(ctx, i).shape);
    return [{ shape, dtype: dtype ?? input(ctx, 0).dtype }];
  };
const whereRule: ShapeRule = (ctx) => {
  const shape = broadcastShapes(broadcastShapes(input(ctx, 0).shape, input(ctx, 1).shape), input(ctx, 2).shape);
  return [{ shape, dtype: input(ctx, 1).dtype }];
};

function spatialOut(inSize: Dim, k: number, stride: number, padBegin: number, padEnd: number, dilation: number): number {
  if (typeof inSize !== 'number') throw new Error('spatial dims must be fixed');
  return Math.floor((inSize + padBegin + padEnd - dilation * (k - 1) - 1) / stride) + 1;
}

const convRule: ShapeRule = (ctx) => {
  const x = input(ctx, 0);
  const w = input(ctx, 1);
  const spatial = x.shape.length - 2;
  const kernel = intsAttr(ctx, 'kernel_shape', w.shape.slice(2) as number[]);
  const strides = intsAttr(ctx, 'strides', Array(spatial).fill(1));
  const dil = intsAttr(ctx, 'dilations', Array(spatial).fill(1));
  const pads = intsAttr(ctx, 'pads', Array(spatial * 2).fill(0));
  const group = intAttr(ctx, 'group', 1);
  if (x.shape[1] !== (w.shape[1] as number) * group)
    throw new Error(`Conv input has ${x.shape[1]} channels, weight expects ${w.shape[1]}x${group}`);
  const out: Dim[] = [x.shape[0]!, w.shape[0]!];
  for (let i = 0; i < spatial; i++)
    out.push(spatialOut(x.shape[2 + i]!, kernel[i]!, strides[i]!, pads[i]!, pads[i + spatial]!, dil[i]!));
  return [{ shape: out, dtype: 'float32' }];
};

const convTransposeRule: ShapeRule = (ctx) => {
  const x = input(ctx, 0);
  const w = input(ctx, 1);
  const spatial = x.shape.length - 2;
  const kernel = intsAttr(ctx, 'kernel_shape', w.shape.slice(2) as number[]);
  const strides = intsAttr(ctx, 'strides', Array(spatial).fill(1));
  const dil = intsAttr(ctx, 'dilations', Array(spatial).fill(1));
  const pads = intsAttr(ctx, 'pads', Array(spatial * 2).fill(0));
  const outPad = intsAttr(ctx, 'output_padding', Array(spatial).fill(0));
  const group = intAttr(ctx, 'group', 1);
  const out: Dim[] = [x.shape[0]!, (w.shape[1] as number) * group];
  for (let i = 0; i < spatial; i++) {
    const n = x.shape[2 + i] as number;
    out.push((n - 1) * strides[i]! - pads[i]! - pads[i + spatial]! + dil[i]! * (kernel[i]! - 1) + 1 + outPad[i]!);
  }
  return [{ shape: out, dtype: 'float32' }];
};

const poolRule: ShapeRule = (ctx) => {
  const x = input(ctx, 0);
  const spatial = x.shape.length - 2;
  const kernel = intsAttr(ctx, 'kernel_shape', []);
  const strides = intsAttr(ctx, 'strides', Array(spatial).fill(1));
  const pads = intsAttr(ctx, 'pads', Array(spatial * 2).fill(0));
  const out: Dim[] = [x.shape[0]!, x.shape[1]!];
  for (let i = 0; i < spatial; i++)
    out.push(spatialOut(x.shape[2 + i]!, kernel[i]!, strides[i]!, pads[i]!, pads[i + spatial]!, 1));
  // MaxPool's optional second output: the flat index of each max
  return ctx.numOutputs === 2 ? [{ shape: out, dtype: x.dtype }, { shape: out, dtype: 'int64' }] : [{ shape: out, dtype: x.dtype }];
};

const reshapeRule: ShapeRule = (ctx) => {
  const x = input(ctx, 0);
  const target = constInts(ctx, 1);
  const out: Dim[] = target.map((d, i) => (d === 0 ? x.shape[i]! : d));
  const minus = out.indexOf(-1);
  if (minus >= 0) {
    const known = dimProduct(out.filter((_, i) => i !== minus));
    out[minus] = dimDivide(dimProduct(x.shape), known);
  }
  return [{ shape: out, dtype: x.dtype }];
};

const reduceShape = (x: Value, axes: readonly number[], keepdims: boolean): Dim[] => {
  const all = reducedAxes(axes, x.shape.length);
  const out: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!all.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
};

/** Reductions whose axes are an attribute (ReduceSumSquare, ReduceMax at opset 17); the dtype of the input. */
const reduceWithAttrAxes: ShapeRule = (ctx) => [
  { shape: reduceShape(input(ctx, 0), intsAttr(ctx, 'axes', []), intAttr(ctx, 'keepdims', 1) === 1), dtype: input(ctx, 0).dtype },
];

/** LayerNormalization with its optional outputs Mean and InvStdDev (shape: x.shape[:axis] + ones). */
const layerNormRule: ShapeRule = (ctx) => {
  const x = input(ctx, 0);
  const r = x.shape.length;
  const axis = normalizeAxis(intAttr(ctx, 'axis', -1), r);
  const stats: Dim[] = x.shape.map((d, i) => (i < axis ? d : 1));
  const out: InferredOutput[] = [{ shape: [...x.shape], dtype: x.dtype }];
  for (let i = 1; i < ctx.numOutputs; i++) out.push({ shape: [...stats], dtype: 'float32' });
  return out;
};

export const SHAPE_RULES: ReadonlyMap<string, ShapeRule> = new Map<string, ShapeRule>([
  ...['Relu', 'Sigmoid', 'Erf', 'Neg', 'Sqrt', 'Exp', 'Log', 'Abs', 'Reciprocal', 'Identity', 'Tanh', 'Softplus', 'Softmax'].map(
    (op): [string, ShapeRule] => [op, sameAsFirst],
  ),
  ...['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum'].map((op): [string, ShapeRule] => [op, broadcast()]),
  ...['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual'].map((op): [string, ShapeRule] => [op, broadcast('bool')]),
  ['Not', (ctx) => [{ shape: [...input(ctx, 0).shape], dtype: 'bool' }]],
  ['Where', whereRule],
  ['LayerNormalization', layerNormRule],
  // Y like X; in training mode also the running mean and variance, shaped like the scale [C]
  ['BatchNormalization', (ctx) => [sameAsFirst(ctx)[0]!, ...Array.from({ length: ctx.numOutputs - 1 }, () => ({ shape: [...input(ctx, 1).shape], dtype: 'float32' as DType }))]],
  ['Conv', convRule],
  ['ConvTranspose', convTransposeRule],
  ['MaxPool', poolRule],
  ['AveragePool', poolRule],
  ['MaxUnpool', (ctx) => [{ shape: constInts(ctx, 2), dtype: input(ctx, 0).dtype }]],
  ['Reshape', reshapeRule],
  [
    'Cast',
    (ctx) => {
      const to = intAttr(ctx, 'to', 1);
      const dtype: DType = to === 7 ? 'int64' : to === 9 ? 'bool' : 'float32';
      return [{ shape: [...input(ctx, 0).shape], dtype }];
    },
  ],
  [
    'Transpose',
    (ctx) => {
      const x = input(ctx, 0);
      const perm = intsAttr(ctx, 'perm', x.shape.map((_, i) => x.shape.length - 1 - i));
      return [{ shape: perm.map((p) => x.shape[p]!), dtype: x.dtype }];
    },
  ],
  [
    'Concat',
    (ctx) => {
      const first = input(ctx, 0);
      const axis = normalizeAxis(intAttr(ctx, 'axis', 0), first.shape.length);
      const shape = [...first.shape];
      const sizes = ctx.inputs.map((v) => v!.shape[axis]!);
      if (!sizes.every((s) => typeof s === 'number')) throw new Error('Concat along a symbolic dim');
      shape[axis] = (sizes as number[]).reduce((a, b) => a + b, 0);
      return [{ shape, dtype: first.dtype }];
    },
  ],
  [
    'Split',
    (ctx) => {
      const x = input(ctx, 0);
      const axis = normalizeAxis(intAttr(ctx, 'axis', 0), x.shape.length);
      const sizes = ctx.inputs[1] ? constInts(ctx, 1) : Array(ctx.numOutputs).fill((x.shape[axis] as number) / ctx.numOutputs);
      return sizes.map((s) => {
        const shape = [...x.shape];
        shape[axis] = s;
        return { shape, dtype: x.dtype };
      });
    },
  ],
  [
    'Slice',
    (ctx) => {
      const x = input(ctx, 0);
      const starts = constInts(ctx, 1);
      const ends = constInts(ctx, 2);
      const axes = ctx.inputs[3] ? constInts(ctx, 3) : starts.map((_, i) => i);
      const steps = ctx.inputs[4] ? constInts(ctx, 4) : starts.map(() => 1);
      const shape = [...x.shape];
      axes.forEach((a, i) => {
        const ax = normalizeAxis(a, shape.length);
        const n = shape[ax];
        if (typeof n !== 'number') throw new Error('Slice on a symbolic dim');
        const step = steps[i]!;
        const s = clampSliceIndex(starts[i]!, n, step);
        const e = clampSliceIndex(ends[i]!, n, step);
        shape[ax] = Math.max(0, Math.ceil((e - s) / step));
      });
      return [{ shape, dtype: x.dtype }];
    },
  ],
  [
    'Gemm',
    (ctx) => {
      const a = input(ctx, 0);
      const b = input(ctx, 1);
      const m = intAttr(ctx, 'transA', 0) ? a.shape[1]! : a.shape[0]!;
      const n = intAttr(ctx, 'transB', 0) ? b.shape[0]! : b.shape[1]!;
      return [{ shape: [m, n], dtype: 'float32' }];
    },
  ],
  [
    'MatMul',
    (ctx) => {
      const a = input(ctx, 0).shape;
      const b = input(ctx, 1).shape;
      const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2));
      return [{ shape: [...batch, a[a.length - 2]!, b[b.length - 1]!], dtype: 'float32' }];
    },
  ],
  [
    'Resize',
    (ctx) => {
      const x = input(ctx, 0);
      const scales = ctx.constantOf(2);
      if (!(scales instanceof Float32Array)) throw new Error('Resize needs constant scales');
      return [{ shape: x.shape.map((d, i) => (scales[i] === 1 ? d : Math.floor((d as number) * scales[i]!))), dtype: x.dtype }];
    },
  ],
  ['Shape', (ctx) => [{ shape: [input(ctx, 0).shape.length], dtype: 'int64' }]],
  [
    'Expand',
    (ctx) => {
      const x = input(ctx, 0);
      return [{ shape: broadcastShapes(x.shape, constInts(ctx, 1)), dtype: x.dtype }];
    },
  ],
  [
    'Tile',
    (ctx) => {
      const x = input(ctx, 0);
      const reps = constInts(ctx, 1);
      return [{ shape: x.shape.map((d, i) => (reps[i] === 1 ? d : (d as number) * reps[i]!)), dtype: x.dtype }];
    },
  ],
  [
    'ReduceMean',
    (ctx) => [{ shape: reduceShape(input(ctx, 0), intsAttr(ctx, 'axes', []), intAttr(ctx, 'keepdims', 1) === 1), dtype: 'float32' }],
  ],
  [
    'ReduceSum',
    (ctx) => [
      { shape: reduceShape(input(ctx, 0), ctx.inputs[1] ? constInts(ctx, 1) : [], intAttr(ctx, 'keepdims', 1) === 1), dtype: input(ctx, 0).dtype },
    ],
  ],
  // ops beyond the model forward graphs: gradients, losses, optimizers, post-processing, and the composites of
  // autodiff/composites.ts (Gelu, SoftmaxMatMul, Attention)
  ['Gelu', sameAsFirst],
  ['Sign', sameAsFirst],
  ['LogSoftmax', (ctx) => [{ shape: [...input(ctx, 0).shape], dtype: 'float32' }]],
  [
    'SoftmaxMatMul',
    (ctx) => {
      const [sShape, vShape] = [input(ctx, 0).shape, input(ctx, 1).shape];
      return [{ shape: [...sShape.slice(0, -1), vShape[vShape.length - 1]!], dtype: 'float32' }, { shape: [...sShape], dtype: 'float32' }];
    },
  ],
  [
    'Attention',
    (ctx) => {
      const [aShape, vShape] = [input(ctx, 0).shape, input(ctx, 2).shape];
      return [{ shape: [...aShape.slice(0, -1), vShape[vShape.length - 1]!], dtype: 'float32' }];
    },
  ],
  ['ReduceSumSquare', reduceWithAttrAxes],
  ['ReduceMax', reduceWithAttrAxes],
  [
    'ArgMax',
    (ctx) => {
      const x = input(ctx, 0);
      const axis = normalizeAxis(intAttr(ctx, 'axis', 0), x.shape.length);
      const keep = intAttr(ctx, 'keepdims', 1) === 1;
      const shape = x.shape.flatMap((d, i) => (i !== axis ? [d] : keep ? [1] : []));
      return [{ shape, dtype: 'int64' }];
    },
  ],
  [
    'Pad',
    (ctx) => {
      const x = input(ctx, 0);
      const pads = constInts(ctx, 1);
      const r = x.shape.length;
      return [{ shape: x.shape.map((d, i) => (pads[i] === 0 && pads[i + r] === 0 ? d : fixed(d) + pads[i]! + pads[i + r]!)), dtype: x.dtype }];
    },
  ],
  [
    'Gather',
    (ctx) => {
      const x = input(ctx, 0);
      const idx = input(ctx, 1);
      const axis = normalizeAxis(intAttr(ctx, 'axis', 0), x.shape.length);
      return [{ shape: [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)], dtype: x.dtype }];
    },
  ],
  [
    'SpaceToDepth',
    (ctx) => {
      const [n, c, h, w] = input(ctx, 0).shape;
      const s = intAttr(ctx, 'blocksize', 1);
      if (fixed(h!) % s || fixed(w!) % s) throw new Error(`SpaceToDepth block ${s} does not divide ${h}x${w}`);
      return [{ shape: [n!, fixed(c!) * s * s, fixed(h!) / s, fixed(w!) / s], dtype: input(ctx, 0).dtype }];
    },
  ],
  [
    'DepthToSpace',
    (ctx) => {
      const [n, c, h, w] = input(ctx, 0).shape;
      const s = intAttr(ctx, 'blocksize', 1);
      return [{ shape: [n!, fixed(c!) / (s * s), fixed(h!) * s, fixed(w!) * s], dtype: input(ctx, 0).dtype }];
    },
  ],
]);

/** Infers output shapes of one node; a missing rule is an error naming the op. */
export function inferShapes(opType: string, ctx: ShapeContext): InferredOutput[] {
  const rule = SHAPE_RULES.get(opType);
  if (!rule) throw new Error(`no shape rule for ONNX op ${opType}`);
  return rule(ctx);
}
