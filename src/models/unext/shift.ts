// UNeXt's token shift (shiftmlp): zero-pad, torch.chunk the channels into 5, torch.roll chunk i by i − 2, narrow back.
import type { GraphBuilder } from '../../ir/builder.ts';
import type { Value } from '../../ir/types.ts';
import * as op from '../../ops/index.ts';

/**
 * Shifts channel chunk i of a map [N, C, H, W] by i − ⌊size/2⌋ along `axis` (2 = H, 3 = W) with zero fill:
 * out[c, h] = x[c, h − s]. Chunks are torch.chunk's: ceil(C/size) channels each, the last one smaller (256 -> 52,
 * 52, 52, 52, 48), and fewer than `size` chunks when C is small. One Pad, one Slice per chunk, one Concat.
 *
 * @example shift(b, x, 2) // x [N, 160, 8, 8]: channels 0-31 move up 2 rows, 32-63 up 1, ..., 128-159 down 2
 */
export function shift(b: GraphBuilder, x: Value, axis: 2 | 3, size = 5): Value {
  const c = x.shape[1] as number;
  const n = x.shape[axis] as number;
  const pad = Math.floor(size / 2);
  const pads = [0, 0, 0, 0, 0, 0, 0, 0];
  pads[axis] = pad;
  pads[4 + axis] = pad;
  const padded = op.Pad(b, x, pads);
  const chunk = Math.ceil(c / size);
  const parts: Value[] = [];
  for (let i = 0; i * chunk < c; i++) {
    const start = pad - (i - pad); // roll by s = i − pad, then narrow from `pad`: rows pad − s .. pad − s + n
    parts.push(op.Slice(b, padded, [i * chunk, start], [Math.min(c, (i + 1) * chunk), start + n], [1, axis]));
  }
  return op.Concat(b, parts, 1);
}
