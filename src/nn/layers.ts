// PyTorch-like layers as compositions of ONNX ops. Each takes the local module name, so parameters get state_dict keys.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/types.ts';
import * as op from '../ops/index.ts';
import { ones, uniformFanIn, zeros, type Init } from './init.ts';
import { batchNormTrain } from './batchnorm-train.ts';

type B = GraphBuilder;

export interface Conv2dOptions {
  kernel: number;
  stride?: number;
  padding?: number;
  groups?: number;
  bias?: boolean;
  /** Initialisers other than PyTorch's default (e.g. UNeXt's `_init_weights`). */
  init?: { weight?: Init; bias?: Init };
}

/** nn.Conv2d: weight [out, in/groups, k, k], bias [out]. */
export function conv2d(b: B, name: string | number, x: Value, outChannels: number, o: Conv2dOptions): Value {
  const inChannels = x.shape[1] as number;
  const groups = o.groups ?? 1;
  const k = o.kernel;
  const pad = o.padding ?? Math.floor(k / 2);
  const fanIn = (inChannels / groups) * k * k;
  return b.scope(name, () => {
    const w = b.parameter('weight', [outChannels, inChannels / groups, k, k], o.init?.weight ?? uniformFanIn(fanIn));
    const bias = o.bias === false ? null : b.parameter('bias', [outChannels], o.init?.bias ?? uniformFanIn(fanIn));
    return op.Conv(b, x, w, bias, { strides: [o.stride ?? 1, o.stride ?? 1], pads: [pad, pad, pad, pad], group: groups });
  });
}

/** nn.ConvTranspose2d with kernel = stride and no padding; PyTorch's fan_in uses weight.size(1) = out/groups. */
export function convTranspose2d(b: B, name: string, x: Value, outChannels: number, o: { kernel: number; stride: number; groups?: number }): Value {
  const inChannels = x.shape[1] as number;
  const groups = o.groups ?? 1;
  const fanIn = (outChannels / groups) * o.kernel * o.kernel;
  return b.scope(name, () => {
    const w = b.parameter('weight', [inChannels, outChannels / groups, o.kernel, o.kernel], uniformFanIn(fanIn));
    const bias = b.parameter('bias', [outChannels], uniformFanIn(fanIn));
    return op.ConvTranspose(b, x, w, bias, { strides: [o.stride, o.stride], group: groups });
  });
}

/** nn.BatchNorm2d (eps 1e-5, momentum 0.1): eval mode uses running stats, train mode batch stats plus running-stat updates. */
export function batchNorm2d(b: B, name: string | number, x: Value, eps = 1e-5, momentum = 0.1): Value {
  const c = x.shape[1] as number;
  return b.scope(name, () => {
    const scale = b.parameter('weight', [c], ones);
    const bias = b.parameter('bias', [c], zeros);
    const mean = b.buffer('running_mean', [c], new Float32Array(c));
    const variance = b.buffer('running_var', [c], new Float32Array(c).fill(1));
    const tracked = b.buffer('num_batches_tracked', [], new Float32Array(1), 'int64');
    if (!b.training) return op.BatchNormalization(b, x, scale, bias, mean, variance, eps);
    return batchNormTrain(b, { x, scale, bias, mean, variance, tracked, eps, momentum });
  });
}

/** nn.Linear on 2-D rows [rows, in] (tokens are kept as rows so Gemm applies). */
export function linear(b: B, name: string, x: Value, outFeatures: number, init: { weight?: Init; bias?: Init } = {}): Value {
  const inFeatures = x.shape[1] as number;
  return b.scope(name, () => {
    const w = b.parameter('weight', [outFeatures, inFeatures], init.weight ?? uniformFanIn(inFeatures));
    const bias = b.parameter('bias', [outFeatures], init.bias ?? uniformFanIn(inFeatures));
    return op.Gemm(b, x, w, bias, { transB: true });
  });
}

/** nn.LayerNorm over the last axis. */
export function layerNorm(b: B, name: string, x: Value, eps: number): Value {
  const c = x.shape[x.shape.length - 1] as number;
  return b.scope(name, () => {
    const scale = b.parameter('weight', [c], ones);
    const bias = b.parameter('bias', [c], zeros);
    return op.LayerNormalization(b, x, scale, bias, eps);
  });
}

/** Exact (erf) GELU: x·½(1 + erf(x/√2)); spelled with Div by √2, the pattern ONNX Runtime fuses into one Gelu kernel. */
export function gelu(b: B, x: Value): Value {
  const erf = op.Erf(b, op.Div(b, x, b.constant([Math.SQRT2], [])));
  return op.Mul(b, op.Mul(b, x, op.Add(b, erf, b.constant([1], []))), b.constant([0.5], []));
}

export const relu = op.Relu;

export const maxPool2 = (b: B, x: Value) => op.MaxPool(b, x, [2, 2], [2, 2]);

/** nn.UpsamplingBilinear2d(scale_factor=2): bilinear with align_corners=True. */
export const upsampleBilinear2 = (b: B, x: Value) => op.ResizeLinear(b, x, [1, 1, 2, 2], true);

/** nn.Upsample(scale_factor=2, mode='bilinear') or F.interpolate(scale_factor=2, mode='bilinear'): align_corners=False. */
export const upsampleBilinearHalfPixel2 = (b: B, x: Value) => op.ResizeLinear(b, x, [1, 1, 2, 2], false);

/** nn.Upsample(scale_factor=2) (nearest). */
export const upsampleNearest2 = (b: B, x: Value) => op.ResizeNearest(b, x, [1, 1, 2, 2]);

/**
 * DropPath (stochastic depth) on a residual branch [N, ...]: in train mode multiplies each sample by a fed
 * per-step mask of 0 or 1/keep; identity in eval mode or when the rate is 0.
 */
export function dropPath(b: B, x: Value, rate: number): Value {
  if (!b.training || rate === 0) return x;
  const mask = b.randomMask([x.shape[0]!, ...x.shape.slice(1).map(() => 1)], 1 - rate);
  return op.Mul(b, x, mask);
}
