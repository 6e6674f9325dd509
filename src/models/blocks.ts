// Convolutional blocks shared by MobileUtr and U-Net, named as in the official PyTorch code.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/types.ts';
import { batchNorm2d, conv2d, relu, upsampleBilinear2, upsampleNearest2 } from '../nn/layers.ts';

/** Conv3x3 + BN + ReLU with the three modules at indices `first`, `first+1`, `first+2` of a Sequential. */
export function convBnRelu(b: GraphBuilder, x: Value, out: number, first = 0): Value {
  return relu(b, batchNorm2d(b, first + 1, conv2d(b, first, x, out, { kernel: 3 })));
}

/** conv_block: `.conv` = (Conv3x3 + BN + ReLU) twice. */
export function convBlock(b: GraphBuilder, name: string, x: Value, out: number): Value {
  return b.module(name, () => b.scope('conv', () => convBnRelu(b, convBnRelu(b, x, out, 0), out, 3)));
}

/** up_conv: `.up` = Upsample x2 (index 0), Conv3x3 + BN + ReLU. */
export function upConv(b: GraphBuilder, name: string, x: Value, out: number, mode: 'bilinear-align-corners' | 'nearest'): Value {
  return b.module(name, () =>
    b.scope('up', () => convBnRelu(b, mode === 'nearest' ? upsampleNearest2(b, x) : upsampleBilinear2(b, x), out, 1)),
  );
}
