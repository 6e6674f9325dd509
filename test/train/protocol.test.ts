// The original training protocol (DESIGN.md §4, the official main.py) point by point: RandomRotate90's k in
// {0,1,2,3}, drop_last=False (the last, smaller batch is trained, also with accumulation), the lr set after each
// step. Small models (16x16) keep sessions quick.
import { describe, expect, it } from 'vitest';
import { SAMPLE_DATA } from '../../src/cli/train.ts';
import { drawRotateFlip } from '../../src/data/augment.ts';
import { scanDataset } from '../../src/data/dataset.ts';
import { BatchLoader } from '../../src/data/loader.ts';
import { createModel } from '../../src/models/model.ts';
import { sgd } from '../../src/optim/optimizers.ts';
import { afterStep, constant, cosine, poly } from '../../src/optim/schedules.ts';
import type { Tensor } from '../../src/runtime/types.ts';
import { epochPlan } from '../../src/train/loop.ts';
import { createTrainer, type BackendFactory, type TrainerOptions } from '../../src/train/trainer.ts';
import { Rng } from '../../src/util/rng.ts';

describe('learning-rate timing of the original (lr set after each step)', () => {
  it('steps 0, 1, 2 of poly with max 10 run at 0.01, 0.01, 0.01·0.9^0.9', () => {
    const lr = afterStep(poly({ base: 0.01, total: 10 }));
    expect(lr(0)).toBe(0.01);
    expect(lr(1)).toBe(0.01);
    expect(lr(2)).toBeCloseTo(0.0090953258, 10);
    expect(lr(2)).toBe(0.01 * 0.9 ** 0.9);
    // the last step (9) runs at f(8); f(9) and f(10) are never used
    expect(lr(9)).toBeCloseTo(0.01 * 0.2 ** 0.9, 15);
  });

  it('is the official loop itself: lr = base·(1 − iter_num/max)^0.9 after optimizer.step()', () => {
    const max = 57 * 3;
    const official: number[] = [];
    let current = 0.01; // SGD(lr=0.01)
    for (let iter = 0; iter < max; iter++) {
      official.push(current); // optimizer.step() runs at the current lr
      current = 0.01 * (1 - iter / max) ** 0.9;
    }
    const lr = afterStep(poly({ base: 0.01, total: max }));
    expect(official.map((_, i) => lr(i))).toEqual(official);
  });

  it('one rule for every schedule: step i runs at f(max(0, i − 1))', () => {
    const warm = afterStep(poly({ base: 0.01, total: 110, warmup: 10 }));
    expect([warm(0), warm(1)]).toEqual([0, 0]);
    expect(warm(6)).toBeCloseTo(0.005, 12);
    expect(warm(11)).toBe(0.01);
    const cos = afterStep(cosine({ base: 1, total: 100, min: 0.1 }));
    expect([cos(0), cos(1)]).toEqual([1, 1]);
    expect(cos(51)).toBeCloseTo(0.55, 12);
    expect(afterStep(constant({ base: 0.1, total: 10 }))(9)).toBe(0.1);
  });
});

describe('batches per epoch (drop_last=False)', () => {
  it('BUSI: 452 images at batch 8 give 57 iterations, the last of 4; --drop-last gives 56', () => {
    expect(epochPlan(452, 8, 1, false)).toEqual({ batches: 57, steps: 57 });
    expect(452 - 56 * 8).toBe(4);
    expect(epochPlan(452, 8, 1, true)).toEqual({ batches: 56, steps: 56 });
    // accumulation: the last group has the one remaining micro-batch and is still applied
    expect(epochPlan(452, 8, 2, false)).toEqual({ batches: 57, steps: 29 });
    expect(epochPlan(452, 8, 2, true)).toEqual({ batches: 56, steps: 28 });
    expect(epochPlan(448, 8, 1, false)).toEqual({ batches: 56, steps: 56 });
  });

  it('the loader yields the smaller last batch unless dropLast', async () => {
    const ds = await scanDataset(SAMPLE_DATA);
    const loader = new BatchLoader(ds, { size: 16, inChannels: 3 });
    const sizes = async (dropLast?: boolean) => {
      const out: number[] = [];
      for await (const b of loader.batches(ds.ids.slice(0, 10), { batch: 4, rng: new Rng(1), dropLast })) out.push(b.n);
      return out;
    };
    expect(await sizes()).toEqual([4, 4, 2]);
    expect(await sizes(true)).toEqual([4, 4]);
  });
});

describe('RandomRotate90 + Flip', () => {
  it('k is uniform in {0,1,2,3} when the rotation applies (p 0.5): 5/8 of samples unrotated', () => {
    const rng = new Rng(3);
    const n = 40_000;
    const k = [0, 0, 0, 0];
    const flips = { none: 0, h: 0, v: 0, hv: 0 };
    for (let i = 0; i < n; i++) {
      const t = drawRotateFlip(rng);
      k[t.k]!++;
      flips[t.flip]++;
    }
    // the old draw (k in {1,2,3}) left exactly half unrotated: 0.5 is 50 standard deviations away from 0.625
    expect(k[0]! / n).toBeCloseTo(5 / 8, 2);
    for (const j of [1, 2, 3]) expect(k[j]! / n).toBeCloseTo(1 / 8, 2);
    expect(flips.none / n).toBeCloseTo(1 / 2, 2);
    for (const f of ['h', 'v', 'hv'] as const) expect(flips[f] / n).toBeCloseTo(1 / 6, 2);
  });
});

function batchOf(n: number, seed: number): { images: Tensor; targets: Tensor } {
  const rng = new Rng(seed);
  const hw = 16 * 16;
  const images = Float32Array.from({ length: n * 3 * hw }, () => rng.normal());
  const targets = Float32Array.from({ length: n * hw }, () => (rng.next() > 0.5 ? 1 : 0));
  return { images: { data: images, dims: [n, 3, 16, 16] }, targets: { data: targets, dims: [n, 1, 16, 16] } };
}

describe('the trainer and a smaller last batch', () => {
  // plain SGD (no momentum, no weight decay): the update is −lr·gradient, linear in the gradient
  const small = (o: TrainerOptions = {}) => {
    const model = createModel('mobileutr', { size: 16 });
    return { model, trainer: createTrainer(model, { optimizer: sgd({ momentum: 0, weightDecay: 0 }), dropPathRate: 0, ...o }) };
  };
  const isParam = (name: string) => !name.includes('running') && !name.includes('num_batches');

  it('an incomplete accumulation group is applied by flush, averaged over its images', async () => {
    const x = batchOf(2, 1);
    const y = batchOf(1, 2);
    const w0 = new Map(small().model.weights);
    const a = small();
    const b = small();
    const c = small({ accumulate: 3 });
    await a.trainer.step(x.images, x.targets, 0.1);
    await b.trainer.step(y.images, y.targets, 0.1);
    expect(await c.trainer.flush(0.1)).toBeUndefined(); // nothing pending
    expect((await c.trainer.step(x.images, x.targets, 0.1)).applied).toBe(false);
    expect((await c.trainer.step(y.images, y.targets, 0.1)).applied).toBe(false);
    expect(c.trainer.pendingMicroBatches).toBe(2);
    const flushed = (await c.trainer.flush(0.1))!;
    expect([flushed.applied, flushed.nonFinite, flushed.step, c.trainer.pendingMicroBatches]).toEqual([true, false, 1, 0]);
    // the mean gradient over the 3 images: (2·g_x + 1·g_y) / 3, not (g_x + g_y) / 2
    const relErr = (got: Float32Array, want: Float32Array) => {
      let e = 0;
      let m = 0;
      for (let i = 0; i < want.length; i++) {
        e = Math.max(e, Math.abs(got[i]! - want[i]!));
        m = Math.max(m, Math.abs(want[i]!));
      }
      return { e: e / m, m };
    };
    let worst = 0;
    let equalWeights = 0;
    let checked = 0;
    for (const [name, w] of w0) {
      if (!isParam(name)) continue;
      const da = a.model.weights.get(name)!;
      const db = b.model.weights.get(name)!;
      const got = Float32Array.from(w, (v, i) => c.model.weights.get(name)![i]! - v);
      const r = relErr(got, Float32Array.from(w, (v, i) => (2 * (da[i]! - v) + (db[i]! - v)) / 3));
      // float32 weights of ~0.1 resolve a delta to ~1e-8: compare tensors whose update is well above that
      if (r.m < 1e-4) continue;
      checked++;
      worst = Math.max(worst, r.e);
      equalWeights = Math.max(equalWeights, relErr(got, Float32Array.from(w, (v, i) => ((da[i]! - v) + (db[i]! - v)) / 2)).e);
    }
    expect(checked).toBeGreaterThan(100);
    expect(worst).toBeLessThan(1e-3);
    expect(equalWeights).toBeGreaterThan(0.03); // the test tells the two averages apart
    await Promise.all([a.trainer.release(), b.trainer.release(), c.trainer.release()]);
  });

  it('a smaller batch compiles a second graph once, then both are reused', async () => {
    let compiled = 0;
    const backend: BackendFactory = async (bytes, options) => {
      compiled++;
      const { NodeSession } = await import('../../src/runtime/session.ts');
      return NodeSession.create(bytes, options);
    };
    const { trainer } = small({ backend });
    const full = batchOf(2, 1);
    const last = batchOf(1, 2);
    for (const b of [full, last, full, last]) expect((await trainer.step(b.images, b.targets, 0.01)).applied).toBe(true);
    expect(compiled).toBe(2);
    expect(trainer.stepCount).toBe(4);
    await trainer.release();
  });
});
