import type { GraphBuilder } from '../../ir/builder.ts';
import type { Value } from '../../ir/types.ts';
import * as op from '../../ops/index.ts';
import { conv2d, maxPool2 } from '../../nn/layers.ts';
import { convBlock, upConv } from '../blocks.ts';

/** The U-Net baseline of the paper's tables: 64-128-256-512-1024 double-conv encoder, nearest-upsample decoder (skip first). */
export function uNet(b: GraphBuilder, input: Value, classes: number, widths: readonly number[] = [64, 128, 256, 512, 1024]): Value {
  const skips: Value[] = [];
  let x = input;
  widths.forEach((width, i) => {
    if (i > 0) x = maxPool2(b, x);
    x = convBlock(b, `Conv${i + 1}`, x, width);
    skips.push(x);
  });
  for (let level = widths.length; level >= 2; level--) {
    const width = widths[level - 2]!;
    x = upConv(b, `Up${level}`, x, width, 'nearest');
    x = convBlock(b, `Up_conv${level}`, op.Concat(b, [skips[level - 2]!, x], 1), width);
  }
  return conv2d(b, 'Conv_1x1', x, classes, { kernel: 1 });
}
