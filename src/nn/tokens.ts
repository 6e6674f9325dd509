import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/types.ts';
import * as op from '../ops/index.ts';

/** [N, C, H, W] feature map -> [N·H·W, C] token rows (PyTorch's x.flatten(2).transpose(1, 2), batch folded into rows). */
export function toRows(b: GraphBuilder, x: Value): Value {
  const [, c, h, w] = x.shape as [unknown, number, number, number];
  const tokens = op.Transpose(b, op.Reshape(b, x, [0, c, h * w]), [0, 2, 1]);
  return op.Reshape(b, tokens, [-1, c]);
}

/** [N·H·W, C] token rows -> [N, C, H, W]. */
export function fromRows(b: GraphBuilder, rows: Value, h: number, w: number): Value {
  const c = rows.shape[1] as number;
  const tokens = op.Transpose(b, op.Reshape(b, rows, [-1, h * w, c]), [0, 2, 1]);
  return op.Reshape(b, tokens, [-1, c, h, w]);
}
