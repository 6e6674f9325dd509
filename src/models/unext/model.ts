// UNeXt (Valanarasu & Patel, MICCAI 2022), exactly the official network (jeya-maria-jose/UNeXt-pytorch archs.py,
// `UNext(num_classes, ...)`) with its state_dict names: a 3-stage conv encoder, two tokenised shifted-MLP stages
// (H/16, H/32), a conv decoder with two shifted-MLP stages, additive skips.
import type { GraphBuilder } from '../../ir/builder.ts';
import type { Value } from '../../ir/types.ts';
import * as op from '../../ops/index.ts';
import { normal, truncatedNormal, zeros } from '../../nn/init.ts';
import { batchNorm2d, conv2d, gelu, layerNorm, linear, maxPool2, relu, upsampleBilinearHalfPixel2 } from '../../nn/layers.ts';
import { fromRows, toRows } from '../../nn/tokens.ts';
import { shift } from './shift.ts';

/** Widths of the official `UNext`: conv encoder 16, 32, 128; token stages 160 (H/16) and 256 (H/32). */
export interface UnextConfig {
  widths: [number, number, number];
  tokens: [number, number];
}

export const UNEXT: UnextConfig = { widths: [16, 32, 128], tokens: [160, 256] };

/** The official module registration order, which is the state_dict order (the forward visits them differently). */
const REGISTRATION_ORDER = [
  'encoder1', 'encoder2', 'encoder3', 'ebn1', 'ebn2', 'ebn3', 'norm3', 'norm4', 'dnorm3', 'dnorm4',
  'block1', 'block2', 'dblock1', 'dblock2', 'patch_embed3', 'patch_embed4',
  'decoder1', 'decoder2', 'decoder3', 'decoder4', 'decoder5', 'dbn1', 'dbn2', 'dbn3', 'dbn4', 'final',
];

// The official `_init_weights` of shiftmlp, shiftedBlock and OverlapPatchEmbed: Linear trunc_normal(std 0.02), bias 0;
// Conv2d N(0, 2/fan_out) with fan_out = k·k·out/groups, bias 0; LayerNorm 1/0 (the default). Others: PyTorch's default.
const LINEAR_INIT = { weight: truncatedNormal(0.02), bias: zeros };
const convInit = (kernel: number, out: number, groups: number) => ({ weight: normal(Math.sqrt(2 / ((kernel * kernel * out) / groups))), bias: zeros });

/** LayerNorm eps: PyTorch's default everywhere in UNeXt. */
const EPS = 1e-5;

/**
 * shiftmlp on token rows [N·H·W, C] (mlp_ratio 1, no dropout): shift along H -> fc1 -> DWConv (depthwise 3×3 on the
 * H×W grid) -> GELU -> shift along W -> fc2.
 */
function shiftMlp(b: GraphBuilder, rows: Value, h: number, w: number): Value {
  const c = rows.shape[1] as number;
  return b.scope('mlp', () => {
    const hidden = linear(b, 'fc1', toRows(b, shift(b, fromRows(b, rows, h, w), 2)), c, LINEAR_INIT);
    const dw = b.scope('dwconv', () => conv2d(b, 'dwconv', fromRows(b, hidden, h, w), c, { kernel: 3, groups: c, init: convInit(3, c, c) }));
    return linear(b, 'fc2', toRows(b, shift(b, gelu(b, dw), 3)), c, LINEAR_INIT);
  });
}

/** `name` = ModuleList of one shiftedBlock: t + shiftmlp(LayerNorm(t)) (no attention, DropPath 0). */
function shiftedBlock(b: GraphBuilder, name: string, rows: Value, h: number, w: number): Value {
  return b.module(name, () => b.scope(0, () => op.Add(b, rows, shiftMlp(b, layerNorm(b, 'norm2', rows, EPS), h, w))));
}

/** OverlapPatchEmbed: Conv3x3 stride 2 -> token rows -> LayerNorm. Returns the rows and their grid. */
function patchEmbed(b: GraphBuilder, name: string, x: Value, dim: number): [Value, number, number] {
  const rows = b.module(name, () => {
    const map = conv2d(b, 'proj', x, dim, { kernel: 3, stride: 2, padding: 1, init: convInit(3, dim, 1) });
    return layerNorm(b, 'norm', toRows(b, map), EPS);
  });
  return [rows, (x.shape[2] as number) / 2, (x.shape[3] as number) / 2];
}

/** A token stage on a map: rows -> shiftedBlock `block` -> LayerNorm `norm` -> map. */
function tokenStage(b: GraphBuilder, block: string, norm: string, rows: Value, h: number, w: number): Value {
  return fromRows(b, layerNorm(b, norm, shiftedBlock(b, block, rows, h, w), EPS), h, w);
}

/** relu(F.interpolate(BN(conv3x3(x)), scale 2, bilinear, align_corners=False)): the ReLU after the upsampling. */
const decode = (b: GraphBuilder, i: number, x: Value, out: number): Value =>
  relu(b, upsampleBilinearHalfPixel2(b, batchNorm2d(b, `dbn${i}`, conv2d(b, `decoder${i}`, x, out, { kernel: 3 }))));

/** Puts the parameters in the official registration order (the builder records them in forward order). */
function toRegistrationOrder(b: GraphBuilder): void {
  const rank = (name: string) => {
    const r = REGISTRATION_ORDER.indexOf(name.split('.')[0]!);
    if (r < 0) throw new Error(`UNeXt: parameter ${name} belongs to no official module`);
    return r;
  };
  const entries = [...b.params].sort(([x], [y]) => rank(x) - rank(y)); // stable: module-internal order is kept
  b.params.clear();
  for (const [k, p] of entries) b.params.set(k, p);
}

/**
 * UNeXt: input [N, C, H, W] (H, W multiples of 32), output logits [N, classes, H, W]. The official constructor
 * ignores `input_channels` (encoder1 takes 3); here encoder1 takes C, which is the official network for C = 3.
 */
export function unext(b: GraphBuilder, input: Value, classes: number, cfg: UnextConfig = UNEXT): Value {
  const [w1, w2, w3] = cfg.widths;
  const [e1, e2] = cfg.tokens;
  // relu(max_pool2d(BN(conv3x3(x)), 2))
  const encode = (i: number, x: Value, out: number) => relu(b, maxPool2(b, batchNorm2d(b, `ebn${i}`, conv2d(b, `encoder${i}`, x, out, { kernel: 3 }))));
  const t1 = encode(1, input, w1);
  const t2 = encode(2, t1, w2);
  const t3 = encode(3, t2, w3);

  const [rows3, h3, w3g] = patchEmbed(b, 'patch_embed3', t3, e1);
  const t4 = tokenStage(b, 'block1', 'norm3', rows3, h3, w3g);
  const [rows4, h4, w4g] = patchEmbed(b, 'patch_embed4', t4, e2);
  let x = tokenStage(b, 'block2', 'norm4', rows4, h4, w4g);

  x = op.Add(b, decode(b, 1, x, e1), t4);
  x = tokenStage(b, 'dblock1', 'dnorm3', toRows(b, x), h3, w3g);
  x = op.Add(b, decode(b, 2, x, w3), t3);
  x = tokenStage(b, 'dblock2', 'dnorm4', toRows(b, x), x.shape[2] as number, x.shape[3] as number);
  x = op.Add(b, decode(b, 3, x, w2), t2);
  x = op.Add(b, decode(b, 4, x, w1), t1);
  x = relu(b, upsampleBilinearHalfPixel2(b, conv2d(b, 'decoder5', x, w1, { kernel: 3 }))); // no BatchNorm
  const logits = conv2d(b, 'final', x, classes, { kernel: 1 });
  toRegistrationOrder(b);
  return logits;
}
