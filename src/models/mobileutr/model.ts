import type { GraphBuilder } from '../../ir/builder.ts';
import type { Value } from '../../ir/types.ts';
import * as op from '../../ops/index.ts';
import { conv2d, maxPool2 } from '../../nn/layers.ts';
import { convBlock, convBnRelu, upConv } from '../blocks.ts';
import type { MobileUtrConfig } from './config.ts';
import { convUtr } from './convutr.ts';
import { lglBlock } from './lgl.ts';

/**
 * MobileUtr (Tang et al., arXiv 2312.01740), exactly the official network: ConvUtr encoder,
 * LGL + transformer bottleneck, U-Net style decoder. Input [N, C, H, W] (H, W multiples of 16), output logits.
 */
export function mobileUtr(b: GraphBuilder, input: Value, classes: number, cfg: MobileUtrConfig): Value {
  const [d0, d1, d2, d3] = cfg.dims;
  const [l1, l2, l3, l4, l5] = cfg.depths;
  const [k1, k2, k3] = cfg.kernels;
  // the official forward repeats a 1-channel image to 3 channels
  const x = input.shape[1] === 1 ? op.Expand(b, input, [1, 3, 1, 1]) : input;

  const [skip0, skip1, skip2] = b.scope('patch_embeddings', () => {
    const stem = b.module('stem', () => convBnRelu(b, x, d0));
    const s0 = b.module('layer1', () => convUtr(b, stem, d0, l1, k1));
    const s1 = b.module('layer2', () => convUtr(b, maxPool2(b, s0), d1, l2, k2));
    const s2 = b.module('layer3', () => convUtr(b, maxPool2(b, s1), d2, l3, k3));
    return [s0, s1, s2];
  });

  let y = maxPool2(b, skip2);
  b.scope('lklgl_bottleneck', () => {
    for (let i = 0; i < l4; i++) y = lglBlock(b, i, y, cfg.heads, 2, cfg.dropPath, cfg.lglKernel);
  });
  y = convBlock(b, 'expend_dims', y, d3);
  b.scope('transformer_bottleneck', () => {
    for (let i = 0; i < l5; i++) y = lglBlock(b, i, y, cfg.heads, 1, 0);
  });
  y = convBlock(b, 'reduce_dims', y, d2);

  y = convBlock(b, 'Up_conv4', op.Concat(b, [y, maxPool2(b, skip2)], 1), d2);
  y = upConv(b, 'Up3', y, d1, 'bilinear-align-corners');
  y = convBlock(b, 'Up_conv3', op.Concat(b, [y, maxPool2(b, skip1)], 1), d1);
  y = upConv(b, 'Up2', y, d0, 'bilinear-align-corners');
  y = convBlock(b, 'Up_conv2', op.Concat(b, [y, maxPool2(b, skip0)], 1), d0);
  y = upConv(b, 'Up1', y, d0, 'bilinear-align-corners');
  return conv2d(b, 'head', y, classes, { kernel: 1 });
}
