// Shape rules for the ONNX ops that only gradient, loss and optimizer graphs emit.
import { registerShapeRule, type InferredOutput, type ShapeContext } from '../ir/shapes.ts';
import type { Dim, Value } from '../ir/types.ts';

const input = (ctx: ShapeContext, i: number): Value => {
  const v = ctx.inputs[i];
  if (!v) throw new Error(`missing input ${i}`);
  return v;
};
const intAttr = (ctx: ShapeContext, name: string, fallback: number): number => {
  const a = ctx.attrs[name];
  return a?.kind === 'int' ? a.value : fallback;
};
const intsAttr = (ctx: ShapeContext, name: string): readonly number[] => {
  const a = ctx.attrs[name];
  return a?.kind === 'ints' ? a.value : [];
};
const constInts = (ctx: ShapeContext, i: number): number[] => {
  const data = ctx.constantOf(i);
  if (!(data instanceof BigInt64Array)) throw new Error(`input ${i} must be a constant int64 tensor`);
  return Array.from(data, Number);
};
const fixed = (d: Dim): number => {
  if (typeof d !== 'number') throw new Error('needs a fixed dim');
  return d;
};
const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

function reduceWithAttrAxes(ctx: ShapeContext): InferredOutput[] {
  const x = input(ctx, 0);
  const axes = intsAttr(ctx, 'axes').map((a) => norm(a, x.shape.length));
  const all = axes.length === 0 ? x.shape.map((_, i) => i) : axes;
  const keep = intAttr(ctx, 'keepdims', 1) === 1;
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!all.includes(i)) shape.push(d);
    else if (keep) shape.push(1);
  });
  return [{ shape, dtype: x.dtype }];
}

registerShapeRule('Gelu', (ctx) => [{ shape: [...input(ctx, 0).shape], dtype: input(ctx, 0).dtype }]);
registerShapeRule('SoftmaxMatMul', (ctx) => {
  const [sShape, vShape] = [input(ctx, 0).shape, input(ctx, 1).shape];
  return [{ shape: [...sShape.slice(0, -1), vShape[vShape.length - 1]!], dtype: 'float32' }, { shape: [...sShape], dtype: 'float32' }];
});
registerShapeRule('Sign', (ctx) => [{ shape: [...input(ctx, 0).shape], dtype: input(ctx, 0).dtype }]);
registerShapeRule('LogSoftmax', (ctx) => [{ shape: [...input(ctx, 0).shape], dtype: 'float32' }]);
registerShapeRule('ReduceSumSquare', reduceWithAttrAxes);
registerShapeRule('ReduceMax', reduceWithAttrAxes);
registerShapeRule('ArgMax', (ctx) => {
  const x = input(ctx, 0);
  const axis = norm(intAttr(ctx, 'axis', 0), x.shape.length);
  const keep = intAttr(ctx, 'keepdims', 1) === 1;
  const shape = x.shape.flatMap((d, i) => (i !== axis ? [d] : keep ? [1] : []));
  return [{ shape, dtype: 'int64' }];
});
registerShapeRule('Pad', (ctx) => {
  const x = input(ctx, 0);
  const pads = constInts(ctx, 1);
  const r = x.shape.length;
  return [{ shape: x.shape.map((d, i) => fixed(d) + pads[i]! + pads[i + r]!), dtype: x.dtype }];
});
registerShapeRule('Gather', (ctx) => {
  const x = input(ctx, 0);
  const idx = input(ctx, 1);
  const axis = norm(intAttr(ctx, 'axis', 0), x.shape.length);
  return [{ shape: [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)], dtype: x.dtype }];
});
registerShapeRule('SpaceToDepth', (ctx) => {
  const [n, c, h, w] = input(ctx, 0).shape;
  const s = intAttr(ctx, 'blocksize', 1);
  if (fixed(h!) % s || fixed(w!) % s) throw new Error(`SpaceToDepth block ${s} does not divide ${h}x${w}`);
  return [{ shape: [n!, fixed(c!) * s * s, fixed(h!) / s, fixed(w!) / s], dtype: input(ctx, 0).dtype }];
});
registerShapeRule('DepthToSpace', (ctx) => {
  const [n, c, h, w] = input(ctx, 0).shape;
  const s = intAttr(ctx, 'blocksize', 1);
  return [{ shape: [n!, fixed(c!) / (s * s), fixed(h!) * s, fixed(w!) * s], dtype: input(ctx, 0).dtype }];
});
// LayerNormalization with its optional outputs Mean and InvStdDev (shape: x.shape[:axis] + ones).
registerShapeRule('LayerNormalization', (ctx) => {
  const x = input(ctx, 0);
  const r = x.shape.length;
  const axis = norm(intAttr(ctx, 'axis', -1), r);
  const stats: Dim[] = x.shape.map((d, i) => (i < axis ? d : 1));
  const out: InferredOutput[] = [{ shape: [...x.shape], dtype: x.dtype }];
  for (let i = 1; i < ctx.numOutputs; i++) out.push({ shape: [...stats], dtype: 'float32' });
  return out;
});
