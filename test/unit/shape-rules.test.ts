// The shape-rule table and the shared attribute helpers (pure TS, no ONNX Runtime).
import { describe, expect, it } from 'vitest';
import { GRADIENT_RULES } from '../../src/autodiff/rules.ts';
import { clampSliceIndex, intsAttr, normalizeAxis, reducedAxes } from '../../src/ir/attrs.ts';
import { GraphBuilder } from '../../src/ir/builder.ts';
import { SHAPE_RULES } from '../../src/ir/shapes.ts';
import { attr } from '../../src/ir/types.ts';
import * as op from '../../src/ops/index.ts';
import { Rng } from '../../src/util/rng.ts';

describe('shape rules', () => {
  it('has a shape rule for every op with a gradient rule', () => {
    expect([...GRADIENT_RULES.keys()].filter((t) => !SHAPE_RULES.has(t))).toEqual([]);
  });

  it('infers LayerNormalization statistics without any autodiff module', () => {
    const b = new GraphBuilder({ rng: new Rng(0) });
    const x = b.input('x', ['N', 3, 8]);
    const [y, mean, invStd] = op.LayerNormalizationStats(b, x, b.constant(new Float32Array(8).fill(1), [8]), null, 1e-5, -1);
    expect([y!.shape, mean!.shape, invStd!.shape]).toEqual([['N', 3, 8], ['N', 3, 1], ['N', 3, 1]]);
    expect(op.LayerNormalization(b, x, b.constant(new Float32Array(8).fill(1), [8]), b.constant(new Float32Array(8), [8]), 1e-5).shape).toEqual(['N', 3, 8]);
  });

  it('names the op when a rule is missing', () => {
    const b = new GraphBuilder({ rng: new Rng(0) });
    expect(() => b.op1('NoSuchOp', [b.input('x', [2])])).toThrow(/no shape rule for ONNX op NoSuchOp/);
  });
});

describe('attribute and axis helpers', () => {
  it('reads ints as a fresh array and falls back on absence or another kind', () => {
    const node = { attrs: { perm: attr.ints([1, 0]), axis: attr.int(1) } };
    const perm = intsAttr(node, 'perm', []);
    perm.push(7);
    expect(intsAttr(node, 'perm', [])).toEqual([1, 0]);
    expect(intsAttr(node, 'axis', [5])).toEqual([5]);
  });

  it('normalizes axes, reductions and slice bounds as ONNX does', () => {
    expect(normalizeAxis(-1, 4)).toBe(3);
    expect(reducedAxes([], 3)).toEqual([0, 1, 2]);
    expect(reducedAxes([-1, 0], 3)).toEqual([2, 0]);
    expect([clampSliceIndex(-2, 8, 1), clampSliceIndex(99, 8, 1), clampSliceIndex(-99, 8, -1), clampSliceIndex(99, 8, -1)]).toEqual([6, 8, -1, 7]);
  });
});
