// The paper's baselines, UNeXt and CMUNeXt, against their official code: exact parameter counts and MACs
// (../shared/fixtures/README.md "Baselines"), state_dict keys in the official order, and eval outputs of the exported
// .onnx against PyTorch (unext_seed0.io64, cmunext_seed0.io64).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { graphMacs, layerTable } from '../../src/analysis/complexity.ts';
import { UserError } from '../../src/errors.ts';
import { createModel } from '../../src/models/model.ts';
import { describeWithFixtures, fixtureModel, readBundle, relativeError } from '../support/fixtures.ts';

describe('UNeXt and CMUNeXt: counts of the official code (fixtures README)', () => {
  it.each([
    ['unext', 1_471_921, 101],
    ['cmunext', 3_149_185, 303],
  ])('%s has %i parameters and %i state_dict entries', (name, params, entries) => {
    const model = createModel(name, { size: 64 });
    expect(model.parameterCount).toBe(params);
    expect(model.entries).toHaveLength(entries);
  });

  // conv+linear MACs at 1x3x256x256 (README: UNeXt 0.5620 G, CMUNeXt 7.2306 G; the papers' 0.58 / 7.41 add norms etc.)
  it.each([
    ['unext', 562_003_968],
    ['cmunext', 7_230_627_840],
  ])('%s at 256x256: %i MACs in convs and linears, none in attention', (name, macs) => {
    const model = createModel(name, { size: 256 });
    const m = graphMacs(model.graph.builder);
    expect(m.weights).toBe(macs);
    expect(m.attention).toBe(0);
    const rows = layerTable(model.graph.builder);
    expect(rows.reduce((n, r) => n + r.params, 0)).toBe(model.parameterCount);
    expect(rows.reduce((n, r) => n + r.macs, 0)).toBe(macs);
  });

  it('in-channels and classes change the first conv and the head only', () => {
    for (const [name, first] of [['unext', 16], ['cmunext', 16]] as const) {
      const base = createModel(name, { size: 64 }).parameterCount;
      expect(createModel(name, { size: 64, inChannels: 1 }).parameterCount).toBe(base - 2 * first * 9);
      expect(createModel(name, { size: 64, classes: 3 }).parameterCount).toBe(base + 2 * 17);
    }
  });

  it("UNeXt's official _init_weights: Linear N(0, 0.02²) and bias 0, shifted-MLP and patch-embedding convs N(0, 2/fan_out) and bias 0", () => {
    const w = createModel('unext', { size: 64, seed: 3 }).weights;
    const std = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    const zero = (name: string) => w.get(name)!.every((v) => v === 0);
    expect(std(w.get('block2.0.mlp.fc1.weight')!)).toBeCloseTo(0.02, 3); // 65,536 draws
    expect(std(w.get('patch_embed4.proj.weight')!) / Math.sqrt(2 / (9 * 256))).toBeCloseTo(1, 2); // fan_out = 3·3·256
    expect(std(w.get('dblock1.0.mlp.dwconv.dwconv.weight')!) / Math.sqrt(2 / 9)).toBeCloseTo(1, 1); // depthwise: fan_out = 9
    for (const name of ['block2.0.mlp.fc1.bias', 'block2.0.mlp.fc2.bias', 'patch_embed4.proj.bias', 'dblock1.0.mlp.dwconv.dwconv.bias']) expect(zero(name), name).toBe(true);
    // encoder*, decoder* and final keep PyTorch's default: U(±1/√fan_in)
    const enc = w.get('encoder2.weight')!;
    expect(Math.max(...enc.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(16 * 9));
    expect(zero('encoder2.bias')).toBe(false);
  });

  it('UNeXt needs a size divisible by 32 (three pools and two stride-2 convs), CMUNeXt by 16', () => {
    expect(() => createModel('unext', { size: 48 })).toThrow(UserError);
    expect(() => createModel('unext', { size: 48 })).toThrow(/unext needs a size that is a multiple of 32, got 48/);
    expect(createModel('unext', { size: 96 }).graph.logits.shape).toEqual(['N', 1, 96, 96]);
    expect(createModel('cmunext', { size: 48 }).graph.logits.shape).toEqual(['N', 1, 48, 48]);
  });

  it('UNeXt shifts with torch.chunk sizes: 160 -> 5 x 32, 256 -> 4 x 52 + 48, 128 -> 4 x 26 + 24', () => {
    const b = createModel('unext', { size: 64 }).graph.builder;
    const chunks = (scope: string) =>
      b.nodes
        .filter((n) => n.opType === 'Concat' && n.name.startsWith(`${scope}.mlp.`))
        .map((n) => n.inputs.map((i) => b.value(i).shape[1]));
    expect(chunks('block1.0')).toEqual([[32, 32, 32, 32, 32], [32, 32, 32, 32, 32]]);
    expect(chunks('block2.0')).toEqual([[52, 52, 52, 52, 48], [52, 52, 52, 52, 48]]);
    expect(chunks('dblock2.0')).toEqual([[26, 26, 26, 26, 24], [26, 26, 26, 26, 24]]);
  });
});

/** Exports to a real .onnx file and runs it with onnxruntime-node, as a user would. */
async function runExported(bytes: Uint8Array, data: Float32Array, shape: number[]): Promise<ort.Tensor> {
  const path = join(mkdtempSync(join(tmpdir(), 'mobileutr-baselines-')), 'model.onnx');
  writeFileSync(path, bytes);
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 2 });
  const out = await session.run({ input: new ort.Tensor('float32', data, shape) });
  await session.release();
  return out.logits!;
}

// README "v3 tolerances": UNeXt's fixture is 1.2e-6 from float64 (test 4e-6; GELU tanh moves it 7.5e-6, LayerNorm eps
// 1e-6 6.6e-6, equal shift chunks 3.7e-3, roll without zero fill 3.7e-2, align_corners 0.53); CMUNeXt's 1.4e-5 (test
// 1e-4; GELU tanh 2.6e-2, align_corners 0.56, concat (up, skip) 0.94).
const EVAL_TOLERANCE = { unext: 4e-6, cmunext: 1e-4 } as const;

for (const name of ['unext', 'cmunext'] as const) {
  describeWithFixtures(`${name} parity with the PyTorch fixtures (eval mode)`, () => {
    it('state_dict keys, order and shapes equal the official ones', () => {
      const ours = createModel(name, { size: 64 }).entries.map((p) => [p.value.name, p.value.shape]);
      const theirs = [...readBundle(`${name}_seed0.weights`).tensors].map(([k, t]) => [k, t.shape]);
      expect(ours).toEqual(theirs);
    });

    it(`reproduces ${name}_seed0.io64 through the exported file, and runs a dynamic batch`, async () => {
      const model = fixtureModel(64, name);
      // the eval input is train64's input[0:1] (not stored again)
      const input = readBundle(`${name}_seed0.train64`).tensors.get('input')!.data;
      const image = input.slice(0, 3 * 64 * 64);
      const bytes = model.toOnnx();
      const logits = await runExported(bytes, image, [1, 3, 64, 64]);
      const err = relativeError(logits.data as Float32Array, readBundle(`${name}_seed0.io64`).tensors.get('output')!.data);
      console.log(`${name} io64: output ${err.toExponential(2)} (tolerance ${EVAL_TOLERANCE[name]})`);
      expect(logits.dims).toEqual([1, 1, 64, 64]);
      expect(err).toBeLessThan(EVAL_TOLERANCE[name]);
      // both images of train64's batch at once: each equals the image run alone
      const pair = await runExported(bytes, input, [2, 3, 64, 64]);
      const second = await runExported(bytes, input.slice(3 * 64 * 64), [1, 3, 64, 64]);
      expect(relativeError((pair.data as Float32Array).slice(0, 4096), logits.data as Float32Array)).toBeLessThan(1e-5);
      expect(relativeError((pair.data as Float32Array).slice(4096), second.data as Float32Array)).toBeLessThan(1e-5);
    });
  });
}
