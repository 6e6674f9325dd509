// transunetLoss against TransUNet's own definition, computed once in PyTorch (test/nn/transunet-loss-facts.py).
import { describe, expect, it } from 'vitest';
import { encodeGraph } from '../../src/autodiff/training-graph.ts';
import { GraphBuilder } from '../../src/ir/builder.ts';
import { transunetLoss } from '../../src/nn/losses.ts';
import { NodeSession } from '../../src/runtime/session.ts';
import type { Value } from '../../src/ir/types.ts';
import { Rng } from '../../src/util/rng.ts';

// /usr/bin/python3 test/nn/transunet-loss-facts.py (torch 1.13.1, float64): loss, CE, Dice loss
const TORCH_LOSS = 1.0586718607375047;

describe('TransUNet loss (0.5·CE + 0.5·Dice, batch-wide squared-sum Dice)', () => {
  it('equals the PyTorch reference on deterministic logits', async () => {
    const [N, K, H, W] = [2, 3, 4, 5];
    const logits = Float32Array.from({ length: N * K * H * W }, (_, i) => 2 * Math.sin(0.37 * i));
    const target = new Float32Array(N * K * H * W);
    for (let i = 0; i < N * H * W; i++) {
      const n = Math.floor(i / (H * W));
      target[(n * K + ((i * 7 + Math.floor(i / 3)) % K)) * H * W + (i % (H * W))] = 1;
    }
    const b = new GraphBuilder({ rng: new Rng(0) });
    const x = b.input('logits', [N, K, H, W]);
    const t = b.input('target', [N, K, H, W]);
    const loss = transunetLoss(b, x, t);
    const session = await NodeSession.create(encodeGraph(b, 'loss', b.inputs, new Map<string, Value>([['loss', loss]])), { threads: 1 });
    const out = await session.run({ logits: { data: logits, dims: [N, K, H, W] }, target: { data: target, dims: [N, K, H, W] } });
    await session.release();
    expect(out.loss!.data[0]!).toBeCloseTo(TORCH_LOSS, 6);
  });
});
