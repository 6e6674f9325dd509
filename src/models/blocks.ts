// Convolutional blocks shared by MobileUtr and U-Net, named as in the official PyTorch code.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/types.ts';
import { batchNorm2d, conv2d, relu, upsampleBilinear2, upsampleBilinearHalfPixel2, upsampleNearest2 } from '../nn/layers.ts';

/** Conv3x3 + BN + ReLU with the three modules at indices `first`, `first+1`, `first+2` of a Sequential. */
export function convBnRelu(b: GraphBuilder, x: Value, out: number, first = 0): Value {
  return relu(b, batchNorm2d(b, first + 1, conv2d(b, first, x, out, { kernel: 3 })));
}

/** conv_block: `.conv` = (Conv3x3 + BN + ReLU) twice. */
export function convBlock(b: GraphBuilder, name: string, x: Value, out: number): Value {
  return b.module(name, () => b.scope('conv', () => convBnRelu(b, convBnRelu(b, x, out, 0), out, 3)));
}

const UPSAMPLERS = { 'bilinear-align-corners': upsampleBilinear2, bilinear: upsampleBilinearHalfPixel2, nearest: upsampleNearest2 };

/** up_conv: `.up` = Upsample x2 (index 0; 'bilinear' is align_corners=False), Conv3x3 + BN + ReLU. */
export function upConv(b: GraphBuilder, name: string, x: Value, out: number, mode: keyof typeof UPSAMPLERS): Value {
  return b.module(name, () => b.scope('up', () => convBnRelu(b, UPSAMPLERS[mode](b, x), out, 1)));
}
