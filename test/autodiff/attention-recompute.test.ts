// The Attention composite's backward recomputes P (composites.ts). That saves memory only if ONNX Runtime keeps the
// recompute apart from the forward: not merged by its common-subexpression elimination, and not runnable before dO
// exists (so no execution order can move it into the forward). Checked on the graph ONNX Runtime actually runs (its
// optimized model).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { backward } from '../../src/autodiff/backward.ts';
import { fuseAttention } from '../../src/autodiff/composites.ts';
import { encodeGraph } from '../../src/autodiff/training-graph.ts';
import { GraphBuilder } from '../../src/ir/builder.ts';
import { decodeModel } from '../../src/ir/onnx.ts';
import * as op from '../../src/ops/index.ts';
import { Rng } from '../../src/util/rng.ts';

describe('Attention composite: P recomputed in the backward', () => {
  it('ONNX Runtime runs two Softmax nodes, and the second only after the loss gradient exists', async () => {
    const b = new GraphBuilder({ rng: new Rng(1) });
    const q = b.input('q', [2, 4, 16, 8]);
    const kt = b.input('kt', [2, 4, 8, 16]);
    const v = b.input('v', [2, 4, 16, 8]);
    const o = op.MatMul(b, op.Softmax(b, op.MatMul(b, op.Mul(b, q, b.constant([8 ** -0.5], [])), kt), -1), v);
    const loss = op.ReduceSum(b, op.Mul(b, o, o), [0, 1, 2, 3], false);
    expect(fuseAttention(b)).toBe(1);
    const grads = backward(b, { value: loss }, [q, kt, v]);
    const outputs = new Map([['loss', loss], ...['q', 'kt', 'v'].map((n): [string, (typeof loss)] => [`grad.${n}`, grads.get(n)!])]);
    const path = join(mkdtempSync(join(tmpdir(), 'mobileutr-attn-')), 'optimized.onnx');
    await ort.InferenceSession.create(encodeGraph(b, 'attention', b.inputs, outputs), { graphOptimizationLevel: 'all', optimizedModelFilePath: path, logSeverityLevel: 3 });

    const nodes = (decodeModel(readFileSync(path)) as { graph: { node: { opType: string; input: string[]; output: string[] }[] } }).graph.node;
    const softmaxes = nodes.filter((n) => n.opType === 'Softmax');
    expect(softmaxes).toHaveLength(2);
    // ancestors of each Softmax: only the recompute's include the backward's use of the attention output (dO)
    const producer = new Map(nodes.flatMap((n) => n.output.map((out): [string, (typeof nodes)[number]] => [out, n])));
    const ancestors = (n: (typeof nodes)[number], seen = new Set<(typeof nodes)[number]>()): Set<(typeof nodes)[number]> => {
      for (const i of n.input) {
        const p = producer.get(i);
        if (p && !seen.has(p)) ancestors(p, seen.add(p));
      }
      return seen;
    };
    const dependsOnBackward = softmaxes.map((s) => [...ancestors(s)].some((a) => a.input.includes(o.name)));
    expect(dependsOnBackward.sort()).toEqual([false, true]);
  });
});
