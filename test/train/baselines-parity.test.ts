// Training-graph parity of the baselines with PyTorch: ../shared/fixtures/{unext,cmunext}_seed0.train64 (batch 2,
// 64x64, train-mode BatchNorm; no DropPath or Dropout in either default config). One forward + backward of
// 0.5·BCE + (1 − Dice) from the fixture weights: loss, logits and the gradient of every parameter.
import { beforeAll, expect, it } from 'vitest';
import { trainingStepFeeds } from '../../src/autodiff/step-feeds.ts';
import { buildTrainingGraph } from '../../src/autodiff/training-graph.ts';
import type { GraphBuilder } from '../../src/ir/builder.ts';
import type { SegmentationModel } from '../../src/models/model.ts';
import { sgd } from '../../src/optim/optimizers.ts';
import { NodeSession } from '../../src/runtime/session.ts';
import { createTrainer } from '../../src/train/trainer.ts';
import {
  asTensor,
  describeWithFixtures,
  exceeding,
  fixtureModel,
  readBundle,
  relativeError,
  summarizeErrors,
  tensorErrors,
  type FixtureTensor,
} from '../support/fixtures.ts';

interface Baseline {
  name: 'unext' | 'cmunext';
  /** Module of the 1x1 head, whose Conv output is the logits. */
  head: string;
  params: number;
  /** README "v3 tolerances" (fixture vs float64 measured; suggested test): gradients, logits. */
  gradTol: number;
  logitsTol: number;
  /** Conv biases that feed straight into a train-mode BatchNorm: exact gradient 0, fixture values are noise. */
  zeroGradBiases: string[];
}

// Gradients. CMUNeXt: both float32 sides carry ~1e-4 of noise (heavy cancellation behind train-mode BatchNorms):
// against an independent float64 PyTorch run, the fixture is ≤ 8.2e-5 off (median 3.6e-5, as the README measured)
// and this graph ≤ 1.0e-4 (median 3.1e-5), so ours vs fixture reaches 1.1e-4 on one tensor (encoder3.up.conv.1.bias).
// MobileUtr's 1e-4 cannot hold here; 2e-4 is still below the README's suggested 5e-4 and far below the bugs it must
// separate (GELU tanh 0.54, align_corners 1.9). UNeXt's fixture is sharper (≤ 2.3e-6 from float64); README's 2e-5
// (GELU tanh 8.1e-4, LayerNorm eps 1.1e-5, equal shift chunks 0.73). Loss: 1e-6 for both.
const BASELINES: Baseline[] = [
  {
    name: 'cmunext',
    head: 'Conv_1x1',
    params: 174,
    gradTol: 2e-4,
    logitsTol: 1e-4,
    zeroGradBiases: ['stem.conv.0', ...[1, 2, 3, 4, 5].map((i) => `encoder${i}.up.conv.0`), ...[5, 4, 3, 2].map((i) => `Up${i}.up.1`)].map((m) => `${m}.bias`),
  },
  {
    name: 'unext',
    head: 'final',
    params: 80,
    gradTol: 2e-5,
    logitsTol: 1e-5,
    zeroGradBiases: ['encoder1', 'encoder2', 'encoder3', 'decoder1', 'decoder2', 'decoder3', 'decoder4'].map((m) => `${m}.bias`),
  },
];
const LOSS_TOL = 1e-6;
const ABS_TOL = 1e-6;

for (const m of BASELINES) {
  describeWithFixtures(`training graph vs PyTorch (${m.name}_seed0.train64)`, () => {
    let model: SegmentationModel;
    let fixture: Map<string, FixtureTensor>;
    beforeAll(() => {
      model = fixtureModel(64, m.name);
      fixture = readBundle(`${m.name}_seed0.train64`).tensors;
    });

    it('loss, logits and every parameter gradient', async () => {
      let b!: GraphBuilder;
      const graph = buildTrainingGraph(model, {
        batch: 2,
        optimizer: sgd({ momentum: 0.9, weightDecay: 1e-4 }),
        gradOutputs: true,
        instrument: (builder) => {
          b = builder;
          const head = b.nodes.find((n) => n.opType === 'Conv' && n.name.startsWith(`${m.head}.`))!;
          return new Map([['logits', b.value(head.outputs[0]!)]]);
        },
      });
      expect(graph.params).toHaveLength(m.params);
      expect(graph.randomInputs).toEqual([]);
      expect(graph.params.map((p) => `grad.${p.input}`).sort()).toEqual([...fixture.keys()].filter((k) => k.startsWith('grad.')).sort());
      // every GELU is differentiated as one op (4 in UNeXt's shifted MLPs; 3 per CMUNeXt block and fusion stage)
      const gelus = b.nodes.filter((n) => n.opType === 'Gelu' && !n.name.startsWith('grad.')).length;
      expect(gelus).toBe(m.name === 'unext' ? 4 : 3 * 7 + 3 * 4);
      expect(b.nodes.filter((n) => n.opType === 'Erf' && !n.name.startsWith('grad.'))).toHaveLength(0);
      console.log(`${m.name}: training graph of ${graph.nodeCount} nodes, ${(graph.onnx.length / 2 ** 20).toFixed(1)} MiB`);

      const session = await NodeSession.create(graph.onnx, { threads: 2, memoryPattern: false });
      const out = await session.run(trainingStepFeeds(graph, model, asTensor(fixture.get('input')!), asTensor(fixture.get('target')!)));
      await session.release();

      const lossRef = fixture.get('loss')!.data[0]!;
      const lossErr = Math.abs(out.loss!.data[0]! - lossRef) / Math.abs(lossRef);
      const logitsErr = relativeError(out.logits!.data, fixture.get('logits')!.data);
      console.log(`${m.name}: loss ${out.loss!.data[0]} vs ${lossRef} (relative ${lossErr.toExponential(2)}); logits ${logitsErr.toExponential(2)}`);
      expect(lossErr).toBeLessThan(LOSS_TOL);
      expect(logitsErr).toBeLessThan(m.logitsTol);

      const names = graph.params.map((p) => p.input);
      const errs = tensorErrors(names, (p) => out[`grad.${p}`]!.data, (p) => fixture.get(`grad.${p}`)!.data, m.zeroGradBiases);
      console.log(summarizeErrors(`${m.name} gradients`, errs));
      expect(errs.filter((e) => e.absolute).map((e) => e.name).sort()).toEqual([...m.zeroGradBiases].sort());
      expect(exceeding(errs, m.gradTol, ABS_TOL)).toEqual([]);
    }, 120_000);

    it('one step through createTrainer: the fixture loss, then updated weights and BatchNorm buffers', async () => {
      const before = new Map([...model.weights].map(([k, v]) => [k, v.slice()]));
      const trainer = createTrainer(model, { threads: 2 });
      const result = await trainer.step(asTensor(fixture.get('input')!), asTensor(fixture.get('target')!), 0.01);
      await trainer.release();
      const lossRef = fixture.get('loss')!.data[0]!;
      expect(Math.abs(result.loss - lossRef) / lossRef).toBeLessThan(LOSS_TOL);
      expect(result.applied).toBe(true);
      // first SGD step with momentum 0.9, wd 1e-4: w' = w − 0.01·(grad + 1e-4·w); the final conv's weight, in full
      const w = `${m.head}.weight`;
      const g = fixture.get(`grad.${w}`)!.data;
      const expected = before.get(w)!.map((v, i) => v - 0.01 * (g[i]! + 1e-4 * v));
      expect(relativeError(model.weights.get(w)!, expected)).toBeLessThan(1e-5);
      const bn = m.name === 'unext' ? 'dbn4' : 'Up2.up.2';
      expect(model.weights.get(`${bn}.num_batches_tracked`)![0]).toBe(before.get(`${bn}.num_batches_tracked`)![0]! + 1);
      expect(relativeError(model.weights.get(`${bn}.running_mean`)!, before.get(`${bn}.running_mean`)!)).toBeGreaterThan(0);
    }, 120_000);
  });
}
