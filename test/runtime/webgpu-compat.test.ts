// The WebGPU rewrites (src/runtime/webgpu-compat.ts: train-mode BatchNorm, Sum, the MaxPool gradient) compute what the original ops compute:
// checked on onnxruntime-node's CPU provider with a whole MobileUtr training step (loss, every gradient, every update).
import { describe, expect, it } from 'vitest';
import { trainingStepFeeds } from '../../src/autodiff/step-feeds.ts';
import { buildTrainingGraph } from '../../src/autodiff/training-graph.ts';
import { decodeModel } from '../../src/ir/onnx.ts';
import { createModel } from '../../src/models/model.ts';
import { sgd } from '../../src/optim/optimizers.ts';
import { NodeSession } from '../../src/runtime/session.ts';
import { decomposeTrainingBatchNorm, hasTrainingBatchNorm } from '../../src/runtime/webgpu-compat.ts';

describe('train-mode BatchNorm, Sum and the MaxPool gradient rewritten for WebGPU', () => {
  it('leaves inference graphs alone, and gives a training step the same outputs', async () => {
    const model = createModel('mobileutr', { size: 32, seed: 2 });
    const inference = model.toOnnx();
    expect(hasTrainingBatchNorm(inference)).toBe(false);
    expect(decomposeTrainingBatchNorm(inference)).toBe(inference);

    const graph = buildTrainingGraph(model, { batch: 2, optimizer: sgd({ momentum: 0.9, weightDecay: 1e-4 }), gradOutputs: true });
    expect(hasTrainingBatchNorm(graph.onnx)).toBe(true);
    const rewritten = decomposeTrainingBatchNorm(graph.onnx);
    expect(hasTrainingBatchNorm(rewritten)).toBe(false);
    const bn = (bytes: Uint8Array) => decodeModel(bytes).graph!.node!.filter((n) => n.opType === 'BatchNormalization');
    const trainMode = bn(graph.onnx).filter((n) => n.attribute!.some((a) => a.name === 'training_mode' && Number(a.i) === 1)).length;
    expect(trainMode).toBeGreaterThan(10);
    // the gradient graph's inference-mode BatchNorms (x̂ recomputed) stay
    expect(bn(rewritten)).toHaveLength(bn(graph.onnx).length - trainMode);
    expect(decodeModel(graph.onnx).graph!.node!.some((n) => n.opType === 'Sum')).toBe(true);
    expect(decodeModel(rewritten).graph!.node!.some((n) => n.opType === 'Sum')).toBe(false);
    const unpools = (bytes: Uint8Array) => decodeModel(bytes).graph!.node!.filter((n) => n.opType === 'MaxUnpool').length;
    const withIndices = (bytes: Uint8Array) => decodeModel(bytes).graph!.node!.filter((n) => n.opType === 'MaxPool' && n.output!.length > 1).length;
    const pools = decodeModel(inference).graph!.node!.filter((n) => n.opType === 'MaxPool').length;
    expect(pools).toBeGreaterThan(2);
    expect([unpools(graph.onnx), withIndices(graph.onnx)]).toEqual([pools, pools]);
    expect([unpools(rewritten), withIndices(rewritten)]).toEqual([0, 0]);

    const feeds = trainingStepFeeds(
      graph,
      model,
      { data: new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i * 0.3)), dims: [2, 3, 32, 32] },
      { data: new Float32Array(2 * 32 * 32).map((_, i) => (i % 5 < 2 ? 1 : 0)), dims: [2, 1, 32, 32] },
    );
    const run = async (bytes: Uint8Array) => {
      const session = await NodeSession.create(bytes, { memoryPattern: false });
      try {
        return await session.run(feeds);
      } finally {
        await session.release();
      }
    };
    const [a, b] = [await run(graph.onnx), await run(rewritten)];
    let worst = { name: '', err: 0 };
    for (const [name, t] of Object.entries(a)) {
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < t.data.length; i++) {
        diff = Math.max(diff, Math.abs(t.data[i]! - b[name]!.data[i]!));
        scale = Math.max(scale, Math.abs(t.data[i]!));
      }
      const err = scale > 1e-3 ? diff / scale : diff;
      if (err > worst.err) worst = { name, err };
    }
    console.log(`rewritten training step vs the original: ${Object.keys(a).length} outputs, worst ${worst.name} ${worst.err.toExponential(2)}`);
    expect(worst.err).toBeLessThan(1e-3);
  }, 120_000);
});
