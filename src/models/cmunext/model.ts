// CMUNeXt (Tang et al., ISBI 2024), exactly the official network (FengheTan9/CMUNeXt network/CMUNeXt.py), with its
// state_dict names: stem, encoder1..5 (CMUNeXt blocks), Up5..2 + Up_conv5..2 (fusion), Conv_1x1.
import type { GraphBuilder } from '../../ir/builder.ts';
import type { Value } from '../../ir/types.ts';
import * as op from '../../ops/index.ts';
import { batchNorm2d, conv2d, gelu, maxPool2 } from '../../nn/layers.ts';
import { convBnRelu, upConv } from '../blocks.ts';

/** Hyper-parameters of the official `CMUNeXt(dims, depths, kernels)`. */
export interface CmunextConfig {
  dims: [number, number, number, number, number];
  depths: [number, number, number, number, number];
  kernels: [number, number, number, number, number];
}

/** The official `cmunext()` factory: the model of the paper's tables (3,149,185 parameters). */
export const CMUNEXT: CmunextConfig = { dims: [16, 32, 128, 160, 256], depths: [1, 1, 1, 3, 1], kernels: [3, 3, 7, 7, 7] };

/** Conv (index `i`) -> GELU -> BN (index `i + 2`) of a Sequential. */
const convGeluBn = (b: GraphBuilder, i: number, x: Value, out: number, kernel: number, groups = 1): Value =>
  batchNorm2d(b, i + 2, gelu(b, conv2d(b, i, x, out, { kernel, groups })));

/**
 * CMUNeXtBlock: `depth` times { x += BN(GELU(dw k×k(x))) (`block.i.0.fn`); x = BN(GELU(1x1 4c->c(BN(GELU(1x1
 * c->4c(x)))))) (no residual) }, then `up` = conv_block(cin -> cout) = Conv3x3 + BN + ReLU.
 */
function cmunextBlock(b: GraphBuilder, x: Value, out: number, depth: number, kernel: number): Value {
  const c = x.shape[1] as number;
  b.scope('block', () => {
    for (let i = 0; i < depth; i++)
      b.scope(i, () => {
        x = op.Add(b, b.scope(0, () => b.scope('fn', () => convGeluBn(b, 0, x, c, kernel, c))), x);
        x = convGeluBn(b, 4, convGeluBn(b, 1, x, 4 * c, 1), c, 1);
      });
  });
  return b.scope('up', () => b.scope('conv', () => convBnRelu(b, x, out)));
}

/** fusion_conv on cat(skip, up): grouped (2) Conv3x3 -> GELU -> BN -> 1x1 cin->4·cout -> GELU -> BN -> 1x1 -> GELU -> BN. */
function fusionConv(b: GraphBuilder, x: Value, out: number): Value {
  const c = x.shape[1] as number;
  return b.scope('conv', () => convGeluBn(b, 6, convGeluBn(b, 3, convGeluBn(b, 0, x, c, 3, 2), 4 * out, 1), out, 1));
}

/**
 * CMUNeXt: input [N, C, H, W] (H, W multiples of 16; any C, as the official constructor's `input_channel`), output
 * logits [N, classes, H, W]. Decoder upsampling is nn.Upsample(scale_factor=2, mode='bilinear'): align_corners=False.
 */
export function cmunext(b: GraphBuilder, input: Value, classes: number, cfg: CmunextConfig = CMUNEXT): Value {
  const { dims, depths, kernels } = cfg;
  let x = b.module('stem', () => b.scope('conv', () => convBnRelu(b, input, dims[0])));
  const skips: Value[] = [];
  for (let i = 0; i < 5; i++) {
    if (i > 0) x = maxPool2(b, x);
    const prev = x;
    x = b.module(`encoder${i + 1}`, () => cmunextBlock(b, prev, dims[i]!, depths[i]!, kernels[i]!));
    skips.push(x);
  }
  for (let level = 5; level >= 2; level--) {
    const up = upConv(b, `Up${level}`, x, dims[level - 2]!, 'bilinear');
    x = b.module(`Up_conv${level}`, () => fusionConv(b, op.Concat(b, [skips[level - 2]!, up], 1), dims[level - 2]!));
  }
  return conv2d(b, 'Conv_1x1', x, classes, { kernel: 1 });
}
