import type { GraphBuilder } from '../../ir/builder.ts';
import type { Value } from '../../ir/types.ts';
import * as op from '../../ops/index.ts';
import { batchNorm2d, conv2d, gelu } from '../../nn/layers.ts';
import { convBnRelu } from '../blocks.ts';

/**
 * ConvUtr: `depth` times { x += BN(GELU(dw k×k(x))); x += BN(GELU(1x1 4c->c(BN(GELU(1x1 c->4c(x)))))) },
 * then `up` = Conv3x3(cin->cout) + BN + ReLU.
 */
export function convUtr(b: GraphBuilder, x: Value, out: number, depth: number, kernel: number): Value {
  const c = x.shape[1] as number;
  b.scope('block', () => {
    for (let i = 0; i < depth; i++) {
      b.scope(i, () => {
        const spatial = b.scope(0, () =>
          b.scope('fn', () => batchNorm2d(b, 2, gelu(b, conv2d(b, 0, x, c, { kernel, groups: c })))),
        );
        x = op.Add(b, x, spatial);
        const channel = b.scope(1, () =>
          b.scope('fn', () => {
            const wide = batchNorm2d(b, 2, gelu(b, conv2d(b, 0, x, 4 * c, { kernel: 1 })));
            return batchNorm2d(b, 5, gelu(b, conv2d(b, 3, wide, c, { kernel: 1 })));
          }),
        );
        x = op.Add(b, x, channel);
      });
    }
  });
  return b.scope('up', () => convBnRelu(b, x, out, 0));
}
