// Trainer, optimizers and schedules: numerics against float64 references of torch.optim, accumulation, DropPath
// masks, non-finite steps, checkpoint round trips. Small models (16x16) keep sessions quick.
import { describe, expect, it } from 'vitest';
import { buildUpdateGraph } from '../../src/autodiff/training-graph.ts';
import { GraphBuilder } from '../../src/ir/builder.ts';
import { createModel } from '../../src/models/model.ts';
import { adamW, sgd, type Optimizer } from '../../src/optim/optimizers.ts';
import { constant, cosine, poly } from '../../src/optim/schedules.ts';
import { NodeSession } from '../../src/runtime/session.ts';
import { WebSession } from '../../src/runtime/web.ts';
import type { Tensor, TensorMap } from '../../src/runtime/types.ts';
import { createTrainer, type TrainerOptions } from '../../src/train/trainer.ts';
import { Rng } from '../../src/util/rng.ts';
import { differingTensors } from '../support/tensors.ts';

const maxRel = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let e = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    e = Math.max(e, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return e / (m || 1);
};

/** Runs `optimizer` for the lrs given on one parameter tensor with fixed gradients, through the update graph. */
async function runUpdates(optimizer: Optimizer, p0: Float32Array, grads: Float32Array[], lrs: number[]): Promise<{ p: Float32Array; state: Map<string, Float32Array>; norms: number[] }> {
  const shape = [p0.length];
  const g = buildUpdateGraph(new GraphBuilder({ rng: new Rng(0) }), new Map([['w', shape]]), optimizer);
  const session = await NodeSession.create(g.onnx);
  let p: Float32Array = p0;
  const state = new Map<string, Float32Array>(g.state.map((s) => [s.input, new Float32Array(p0.length)]));
  const norms: number[] = [];
  for (let t = 0; t < grads.length; t++) {
    const feeds: TensorMap = { w: { data: p, dims: shape }, 'grad.w': { data: grads[t]!, dims: shape }, grad_scale: { data: Float32Array.of(1), dims: [] } };
    for (const [k, v] of state) feeds[k] = { data: v, dims: shape };
    for (const [k, v] of Object.entries(optimizer.scalars(lrs[t]!, t + 1))) feeds[`optim.${k}`] = { data: Float32Array.of(v), dims: [] };
    const out = await session.run(feeds);
    p = out['next.w']!.data;
    for (const s of g.state) state.set(s.input, out[s.output]!.data);
    norms.push(Math.sqrt(out.grad_norm_sq!.data[0]!));
  }
  await session.release();
  return { p, state, norms };
}

describe('optimizers match torch.optim (float64 reference of the same algorithm)', () => {
  const rng = new Rng(7);
  const n = 64;
  const p0 = Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
  const grads = [0, 1, 2].map(() => Float32Array.from({ length: n }, () => rng.uniform(-1, 1)));
  const lrs = [0.1, 0.05, 0.02];

  it.each([
    ['SGD momentum 0.9, wd 1e-4', { momentum: 0.9, weightDecay: 1e-4, nesterov: false }],
    ['SGD nesterov', { momentum: 0.9, weightDecay: 1e-2, nesterov: true }],
    ['SGD plain', { momentum: 0, weightDecay: 0, nesterov: false }],
  ])('%s', async (_name, o) => {
    const { p, norms } = await runUpdates(sgd(o), p0, grads, lrs);
    const ref = Float64Array.from(p0);
    const buf = new Float64Array(n);
    grads.forEach((g, t) => {
      for (let i = 0; i < n; i++) {
        const d = g[i]! + o.weightDecay * ref[i]!;
        buf[i] = t === 0 ? d : o.momentum * buf[i]! + d; // torch: the first step clones d into the buffer
        const dir = o.momentum === 0 ? d : o.nesterov ? d + o.momentum * buf[i]! : buf[i]!;
        ref[i] = ref[i]! - lrs[t]! * dir;
      }
    });
    expect(maxRel(p, ref)).toBeLessThan(1e-6);
    expect(norms[0]).toBeCloseTo(Math.hypot(...grads[0]!), 4);
  });

  it('AdamW (betas 0.9/0.999, eps 1e-8, wd 0.01)', async () => {
    const { p, state } = await runUpdates(adamW({ weightDecay: 0.01 }), p0, grads, lrs);
    const ref = Float64Array.from(p0);
    const m = new Float64Array(n);
    const v = new Float64Array(n);
    grads.forEach((g, t) => {
      const step = t + 1;
      for (let i = 0; i < n; i++) {
        ref[i] = ref[i]! * (1 - lrs[t]! * 0.01);
        m[i] = 0.9 * m[i]! + 0.1 * g[i]!;
        v[i] = 0.999 * v[i]! + 0.001 * g[i]! * g[i]!;
        const denom = Math.sqrt(v[i]!) / Math.sqrt(1 - 0.999 ** step) + 1e-8;
        ref[i] = ref[i]! - (lrs[t]! / (1 - 0.9 ** step)) * (m[i]! / denom);
      }
    });
    expect(maxRel(p, ref)).toBeLessThan(1e-6);
    expect(maxRel(state.get('exp_avg.w')!, m)).toBeLessThan(1e-6);
    expect(maxRel(state.get('exp_avg_sq.w')!, v)).toBeLessThan(1e-6);
  });
});

describe('learning-rate schedules', () => {
  it('poly is the paper schedule base·(1 − step/total)^0.9', () => {
    const lr = poly({ base: 0.01, total: 100 });
    expect(lr(0)).toBe(0.01);
    expect(lr(50)).toBeCloseTo(0.01 * 0.5 ** 0.9, 12);
    expect(lr(100)).toBe(0);
  });
  it('linear warm-up then the schedule over the remaining steps', () => {
    const lr = poly({ base: 0.01, total: 110, warmup: 10 });
    expect(lr(0)).toBe(0);
    expect(lr(5)).toBeCloseTo(0.005, 12);
    expect(lr(10)).toBe(0.01);
    expect(lr(60)).toBeCloseTo(0.01 * 0.5 ** 0.9, 12);
    expect(constant({ base: 0.1, total: 10, warmup: 4, warmupStart: 0.5 })(2)).toBeCloseTo(0.075, 12);
    expect(constant({ base: 0.1, total: 10 })(9)).toBe(0.1);
  });
  it('cosine anneals from base to min', () => {
    const lr = cosine({ base: 1, total: 100, min: 0.1 });
    expect(lr(0)).toBe(1);
    expect(lr(50)).toBeCloseTo(0.55, 12);
    expect(lr(100)).toBeCloseTo(0.1, 12);
  });
});

function batchOf(n: number, classes: number, seed: number): { images: Tensor; targets: Tensor } {
  const rng = new Rng(seed);
  const hw = 16 * 16;
  const images = Float32Array.from({ length: n * 3 * hw }, () => rng.normal());
  const targets = new Float32Array(n * classes * hw);
  for (let i = 0; i < n * hw; i++) {
    const k = classes === 1 ? 0 : rng.int(classes);
    const sample = Math.floor(i / hw);
    targets[(sample * classes + k) * hw + (i % hw)] = classes === 1 ? (rng.next() > 0.5 ? 1 : 0) : 1;
  }
  return { images: { data: images, dims: [n, 3, 16, 16] }, targets: { data: targets, dims: [n, classes, 16, 16] } };
}

const snapshot = (m: Map<string, Float32Array>) => new Map([...m].map(([k, v]) => [k, v.slice()]));

describe('createTrainer', () => {
  const small = (o: TrainerOptions = {}, classes = 1) => {
    const model = createModel('mobileutr', { size: 16, classes });
    return { model, trainer: createTrainer(model, o) };
  };

  it('accumulating 2 micro-batches of X equals one step on X; DropPath rate 0 ignores the seed', async () => {
    const { images, targets } = batchOf(2, 1, 1);
    const a = small({ dropPathRate: 0, seed: 1 });
    const b = small({ dropPathRate: 0, seed: 2, accumulate: 2 });
    const ra = await a.trainer.step(images, targets, 0.05);
    const r1 = await b.trainer.step(images, targets, 0.05);
    const r2 = await b.trainer.step(images, targets, 0.05);
    expect([r1.applied, r2.applied, r2.step]).toEqual([false, true, 1]);
    expect(r1.loss).toBe(ra.loss);
    expect(r2.gradNorm).toBeCloseTo(ra.gradNorm!, 4);
    let worst = 0;
    for (const [name, w] of a.model.weights) if (!name.includes('running') && !name.includes('num_batches')) worst = Math.max(worst, maxRel(b.model.weights.get(name)!, w));
    const sa = a.trainer.exportState().tensors;
    const sb = b.trainer.exportState().tensors;
    for (const [k, v] of sa) worst = Math.max(worst, maxRel(sb.get(k)!, v));
    expect(worst).toBeLessThan(1e-5);
    // BatchNorm statistics were updated once per micro-batch
    expect(b.model.weights.get('patch_embeddings.stem.1.num_batches_tracked')![0]).toBe(2);
    await Promise.all([a.trainer.release(), b.trainer.release()]);
  });

  it('DropPath masks depend on the seed', async () => {
    const { images, targets } = batchOf(2, 1, 2);
    const loss = async (seed: number) => {
      const { trainer } = small({ seed, dropPathRate: 0.5 });
      const r = await trainer.step(images, targets, 0.05);
      await trainer.release();
      return r.loss;
    };
    // (the resume test shows that the same generator state gives the same masks)
    expect(await loss(1)).not.toBe(await loss(2));
  });

  it('a non-finite batch commits nothing and the next batch trains normally', async () => {
    const { model, trainer } = small({ dropPathRate: 0 });
    const { images, targets } = batchOf(2, 1, 3);
    await trainer.step(images, targets, 0.05);
    const before = snapshot(model.weights);
    const stateBefore = trainer.exportState();
    const bad = { data: images.data.slice(), dims: images.dims };
    bad.data[5] = Number.NaN;
    const r = await trainer.step(bad, targets, 0.05);
    expect(r.nonFinite).toBe(true);
    expect(r.applied).toBe(false);
    expect(trainer.stepCount).toBe(1);
    expect(differingTensors(model.weights, before)).toEqual([]);
    expect(differingTensors(trainer.exportState().tensors, stateBefore.tensors)).toEqual([]);
    expect([...trainer.exportState().tensors.keys()]).toEqual([...stateBefore.tensors.keys()]);
    const good = await trainer.step(images, targets, 0.05);
    expect(good.nonFinite).toBe(false);
    expect(Number.isFinite(good.loss) && Number.isFinite(good.gradNorm!)).toBe(true);
    await trainer.release();
  });

  it('an update that overflows (finite loss and gradient, lr 1e38) commits nothing', async () => {
    for (const accumulate of [1, 2]) {
      const { model, trainer } = small({ dropPathRate: 0, accumulate });
      // a conv bias right before a train-mode BatchNorm does not change the forward (the batch mean removes it),
      // so at 1e5 the loss and gradient stay finite while its weight-decay term 1e-4·1e5 = 10, times lr 1e38,
      // overflows float32: the updated bias and its momentum-driven step are infinite
      model.weights.set('patch_embeddings.stem.0.bias', new Float32Array(model.weights.get('patch_embeddings.stem.0.bias')!.length).fill(1e5));
      const { images, targets } = batchOf(2, 1, 3);
      for (let i = 0; i < accumulate; i++) await trainer.step(images, targets, 0.05);
      const before = snapshot(model.weights);
      const stateBefore = trainer.exportState();
      let r = await trainer.step(images, targets, 1e38);
      for (let i = 1; i < accumulate; i++) r = await trainer.step(images, targets, 1e38);
      // the forward and backward were fine: only the weights overflowed
      expect(Number.isFinite(r.loss)).toBe(true);
      expect(Number.isFinite(r.gradNorm!)).toBe(true);
      expect(r.nonFinite).toBe(true);
      expect(r.nonFiniteOutput).toBe('next.patch_embeddings.stem.0.bias');
      expect(r.applied).toBe(false);
      expect(trainer.stepCount).toBe(1);
      expect(differingTensors(model.weights, before, (k) => !(accumulate > 1 && /running_|num_batches/.test(k)))).toEqual([]);
      const tensors = trainer.exportState().tensors;
      expect(differingTensors(tensors, stateBefore.tensors, (k) => !k.startsWith('acc.'))).toEqual([]);
      for (const [k, v] of tensors) expect(v.every(Number.isFinite), k).toBe(true);
      // and the next step at a sane lr trains normally from the untouched state
      let good = await trainer.step(images, targets, 0.05);
      for (let i = 1; i < accumulate; i++) good = await trainer.step(images, targets, 0.05);
      expect([good.nonFinite, good.applied, good.step]).toEqual([false, true, 2]);
      for (const v of model.weights.values()) expect(v.every(Number.isFinite)).toBe(true);
      await trainer.release();
    }
  });

  it('feeds given DropPath keep flags (keepMasks), scaled by 1/keep, in graph order', async () => {
    const { images, targets } = batchOf(2, 1, 8);
    const seen: string[] = [];
    const run = async (flags: (input: string) => number[] | undefined) => {
      const { trainer } = small({ dropPathRate: 0.5, keepMasks: (site) => (seen.push(site.input), flags(site.input)) });
      const r = await trainer.step(images, targets, 0.05);
      await trainer.release();
      return r.loss;
    };
    const allKept = await run(() => [1, 1]);
    expect(seen).toHaveLength(12);
    expect(seen.slice(0, 4).map((s) => s.replace(/_\d+$/, ''))).toEqual([
      'lklgl_bottleneck.0.LocalAgg.drop_mask', 'lklgl_bottleneck.0.LocalAgg.drop_mask', 'lklgl_bottleneck.0.SelfAttn.drop_mask', 'lklgl_bottleneck.0.SelfAttn.drop_mask',
    ]);
    // all kept at rate 0.5 scales every branch by 2: not the rate-0 network
    const { trainer: plain } = small({ dropPathRate: 0 });
    const rate0 = (await plain.step(images, targets, 0.05)).loss;
    await plain.release();
    expect(allKept).not.toBe(rate0);
    // every branch dropped: LocalAgg gates are sigmoid(0) − 0.5 = 0 and SelfAttn adds nothing
    expect(await run(() => [0, 0])).not.toBe(allKept);
    expect(await run(() => [1, 1])).toBe(allKept); // deterministic, whatever the seed
  });

  it('exportState/loadState resume the exact trajectory (AdamW, 3 classes with CE + Dice)', async () => {
    const batches = [1, 2, 3].map((s) => batchOf(2, 3, 10 + s));
    const a = small({ optimizer: adamW(), dropPathRate: 0.3, seed: 5 }, 3);
    for (const { images, targets } of batches.slice(0, 2)) await a.trainer.step(images, targets, 1e-3);
    const saved = a.trainer.exportState();
    const weights = snapshot(a.model.weights);
    const last = await a.trainer.step(batches[2]!.images, batches[2]!.targets, 1e-3);

    const b = small({ optimizer: adamW(), dropPathRate: 0.3, seed: 99 }, 3);
    for (const [k, v] of weights) b.model.weights.set(k, v);
    b.trainer.loadState(saved);
    const resumed = await b.trainer.step(batches[2]!.images, batches[2]!.targets, 1e-3);
    expect(resumed.loss).toBe(last.loss);
    expect(resumed.step).toBe(3);
    expect(differingTensors(b.model.weights, a.model.weights)).toEqual([]);
    expect(() => b.trainer.loadState({ ...saved, optimizer: { name: 'sgd', config: {} } })).toThrow(/optimizer/);
    await Promise.all([a.trainer.release(), b.trainer.release()]);
  });

  it('trains unchanged on onnxruntime-web (wasm, here in Node): the first step matches onnxruntime-node', async () => {
    const { images, targets } = batchOf(2, 1, 6);
    const node = small({ dropPathRate: 0 });
    const web = small({ dropPathRate: 0, backend: (bytes, o) => WebSession.create(bytes, { ...o, backend: 'wasm' }) });
    const [a, b] = [await node.trainer.step(images, targets, 0.05), await web.trainer.step(images, targets, 0.05)];
    expect(Math.abs(a.loss - b.loss) / a.loss).toBeLessThan(1e-5);
    expect(Math.abs(a.gradNorm! - b.gradNorm!) / a.gradNorm!).toBeLessThan(1e-4);
    // gradients (first momentum buffers) agree; a later step can differ more: the loss is not smooth (ReLU,
    // max-pool), and float32 rounding differences move a few decisions at this tiny size
    const sb = web.trainer.exportState().tensors;
    let worst = 0;
    for (const [k, v] of node.trainer.exportState().tensors) if (v.some((g) => Math.abs(g) > 1e-4)) worst = Math.max(worst, maxRel(sb.get(k)!, v)); // skips the conv biases before BatchNorm (zero gradient + noise)
    expect(worst).toBeLessThan(1e-3);
    await Promise.all([node.trainer.release(), web.trainer.release()]);
  });

  it('rejects inputs of the wrong shape', async () => {
    const { trainer } = small();
    const { images, targets } = batchOf(2, 1, 4);
    await expect(trainer.step({ data: images.data, dims: [2, 3, 8, 32] }, targets, 0.1)).rejects.toThrow(/images must be \[2,3,16,16\]/);
    await expect(trainer.step(images, { data: targets.data, dims: [2, 2, 16, 16] }, 0.1)).rejects.toThrow(/targets must be/);
    expect(() => createTrainer(createModel('mobileutr', { size: 16 }), { accumulate: 0 })).toThrow(/accumulate/);
  });
});
