// MaxPool's gradient on windows with tied maxima, against PyTorch. Finite differences cannot check this (a tie is
// a kink), and random test data never ties, but real images do: a flat region (an ultrasound's black margin) gives
// exactly equal activations in whole windows.
import { describe, expect, it } from 'vitest';
import { backward } from '../../src/autodiff/backward.ts';
import { encodeGraph } from '../../src/autodiff/training-graph.ts';
import { GraphBuilder } from '../../src/ir/builder.ts';
import * as op from '../../src/ops/index.ts';
import { NodeSession } from '../../src/runtime/session.ts';
import { Rng } from '../../src/util/rng.ts';

// prettier-ignore
const X = [
  0.5, 0.5, 0.5, 0.5, 0.2, 0.9,
  0.5, 0.5, 0.5, 0.5, 0.9, 0.1,
  0.5, 0.5, 0.3, 0.7, -1, -1,
  0.5, 0.5, 0.7, 0.7, -1, -1,

  0.1, 0.8, 0.8, 0.2, 0.4, 0.3,
  0.3, 0.8, 0.8, 0.8, 0.4, 0.4,
  2, 1, 0, 0, 0.6, 0.6,
  2, 2, 0, 0, 0.6, 0.5,
];
const DY = Array.from({ length: 12 }, (_, i) => i + 1);
// PyTorch 1.13 (Debian python3-torch): x = torch.tensor(X).reshape(1, 2, 4, 6).requires_grad_();
// torch.nn.functional.max_pool2d(x, 2, 2).backward(torch.arange(1, 13.).reshape(1, 2, 2, 3)); x.grad.flatten()
// prettier-ignore
const TORCH_DX = [
  1, 0, 2, 0, 0, 3,
  0, 0, 0, 0, 0, 0,
  4, 0, 0, 5, 6, 0,
  0, 0, 0, 0, 0, 0,

  0, 7, 8, 0, 9, 0,
  0, 0, 0, 0, 0, 0,
  10, 0, 11, 0, 12, 0,
  0, 0, 0, 0, 0, 0,
];

describe('MaxPool gradient with tied maxima', () => {
  it('routes each window to its first max in row-major order, as PyTorch does', async () => {
    const b = new GraphBuilder({ rng: new Rng(0) });
    const x = b.input('x', [1, 2, 4, 6]);
    const dy = b.input('dy', [1, 2, 2, 3]);
    const y = op.MaxPool(b, x, [2, 2], [2, 2]);
    const dx = backward(b, { value: y, grad: dy }, [x]).get('x')!;
    const session = await NodeSession.create(encodeGraph(b, 'maxpool-ties', b.inputs, new Map([['dx', dx]])), { threads: 1 });
    const out = await session.run({ x: { data: Float32Array.from(X), dims: [1, 2, 4, 6] }, dy: { data: Float32Array.from(DY), dims: [1, 2, 2, 3] } });
    await session.release();
    expect(Array.from(out.dx!.data)).toEqual(TORCH_DX);
  });
});
