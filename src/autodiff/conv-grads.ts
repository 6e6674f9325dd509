// Gradient kernels of Conv / ConvTranspose as ONNX subgraphs, chosen for ONNX Runtime's CPU speed (DESIGN.md §2).
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/types.ts';
import * as op from '../ops/index.ts';

type B = GraphBuilder;

/** Conv attributes with defaults filled in (2-D). */
export interface ConvGeometry {
  kernel: [number, number];
  strides: [number, number];
  /** [top, left, bottom, right], ONNX order. */
  pads: [number, number, number, number];
  dilations: [number, number];
  group: number;
}

const dims = (v: Value): number[] =>
  v.shape.map((d) => {
    if (typeof d !== 'number') throw new Error(`conv gradients need fixed shapes, got [${v.shape.join(',')}] for ${v.name}`);
    return d;
  });

/** Block size of the SpaceToDepth weight-gradient trick: the largest of `preferred` that divides both output sides. */
export function blockSize(ho: number, wo: number, preferred: readonly number[]): number {
  return preferred.find((s) => ho % s === 0 && wo % s === 0) ?? 1;
}

/**
 * The weight-gradient kernel, from measurements of ORT 1.30 (one thread, loaded machine) at MobileUtr's shapes,
 * batch 8, 256x256. Dense 3x3: one MatMul per tap on flattened windows 10-50 ms, im2col (Slice + Concat, one
 * MatMul) 12-74 ms and better only for few input channels (the stem: 12 vs 25 ms), SpaceToDepth 2/4/8 18-110 ms,
 * dy as the kernel 25-146 ms. Depthwise and grouped: SpaceToDepth 4, 3-26 ms (block 1 is 2-5x slower, 8 similar).
 * Grouped convs with several channels per group on both sides take the dense kernels per group (GroupedMode).
 */
const weightGradStrategy = (group: number, cin: number): Strategy => (group !== 1 ? 4 : cin <= 4 ? 'im2col' : 'taps');
export type Strategy = 'im2col' | 'taps' | number;

/**
 * Grouped convs that are not depthwise (more than one channel per group on both sides): 'split' computes each
 * group's gradients with the dense kernels on its channels (Split of x, dy and W; Concat of the parts), 'native'
 * as one grouped Conv (dx a flipped Conv or ConvTranspose, dW SpaceToDepth 4). 'auto' splits up to MAX_SPLIT_GROUPS groups.
 * ORT 1.30, one thread, kernel ms at CMUNeXt's groups=2 3x3 fusion convs, batch 8, 256x256 (npm run bench:ops --
 * --only grouped): dW native -> split 932 -> 431, 466 -> 215, 4634 -> 524, 1155 -> 164 (Up_conv2..5); dx
 * 198 -> 161, 143 -> 127, 692 -> 446, 181 -> 169; 8 groups of 16 at [8,128,64,64]: dW 115 -> 40, dx 35 -> 32.
 */
export type GroupedMode = 'auto' | 'split' | 'native';
const MAX_SPLIT_GROUPS = 8;
const splitsGroups = (group: number, cig: number, cog: number, mode: GroupedMode): boolean =>
  group > 1 && cig > 1 && cog > 1 && (mode === 'split' || (mode === 'auto' && group <= MAX_SPLIT_GROUPS));

/** Zero-pads x by the conv's pads, plus `extraRows` at the bottom. */
const padInput = (b: B, x: Value, g: ConvGeometry, extraRows = 0): Value =>
  g.pads.some((p) => p > 0) || extraRows > 0 ? op.Pad(b, x, [0, 0, g.pads[0], g.pads[1], 0, 0, g.pads[2] + extraRows, g.pads[3]]) : x;

/** dL/dW for a dense conv with stride 1: dW[co, (ci, kh, kw)] = Σ_n dy[n, co, :] · shift_(kh,kw)(x)[n, ci, :], one MatMul on the stacked shifts. */
function im2colWeightGrad(b: B, x: Value, dy: Value, wShape: readonly number[], g: ConvGeometry): Value {
  const [n, cin] = dims(x);
  const [, cout, ho, wo] = dims(dy);
  const [kh, kw] = g.kernel;
  const [dh, dw] = g.dilations;
  const padded = padInput(b, x, g);
  const taps: Value[] = [];
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++) taps.push(op.Reshape(b, op.Slice(b, padded, [i * dh, j * dw], [i * dh + ho!, j * dw + wo!], [2, 3]), [n!, cin!, 1, ho! * wo!]));
  const cols = op.Reshape(b, taps.length === 1 ? taps[0]! : op.Concat(b, taps, 2), [n!, cin! * kh * kw, ho! * wo!]);
  const dyr = op.Reshape(b, dy, [n!, cout!, ho! * wo!]);
  return op.Reshape(b, op.ReduceSum(b, op.MatMul(b, dyr, op.Transpose(b, cols, [0, 2, 1])), [0], false), [...wShape]);
}

/**
 * The same as one MatMul per tap without stacking: with rows of width Wp (padded), dy zero-padded to Wp columns
 * and the padded x flattened, the tap (kh, kw) window is the contiguous range starting at kh·dh·Wp + kw·dw.
 */
function tapsWeightGrad(b: B, x: Value, dy: Value, wShape: readonly number[], g: ConvGeometry): Value {
  const [n, cin, h, w] = dims(x);
  const [, cout, ho, wo] = dims(dy);
  const [kh, kw] = g.kernel;
  const [dh, dw] = g.dilations;
  const hp = h! + g.pads[0] + g.pads[2];
  const wp = w! + g.pads[1] + g.pads[3];
  const flat = op.Reshape(b, padInput(b, x, g, 1), [n!, cin!, (hp + 1) * wp]);
  const dyFlat = op.Reshape(b, wp > wo! ? op.Pad(b, dy, [0, 0, 0, 0, 0, 0, 0, wp - wo!]) : dy, [n!, cout!, ho! * wp]);
  const parts: Value[] = [];
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++) {
      const start = i * dh * wp + j * dw;
      const window = op.Slice(b, flat, [start], [start + ho! * wp], [2]);
      parts.push(op.Reshape(b, op.ReduceSum(b, op.MatMul(b, dyFlat, op.Transpose(b, window, [0, 2, 1])), [0], false), [cout!, cin!, 1]));
    }
  return op.Reshape(b, parts.length === 1 ? parts[0]! : op.Concat(b, parts, 2), [...wShape]);
}

/**
 * dL/dW of y = Conv(x, W) given dy, for any group, stride, dilation and padding.
 * Pointwise convs use one batched MatMul. Otherwise dy becomes the kernel of a second, dilated Conv:
 * SpaceToDepth(dy, S) turns each S×S phase of dy into its own output channel, so that Conv has S² times more
 * output channels and an (S·stride)-dilated kernel S² times smaller; a Gather picks each kernel tap of each phase.
 */
export function convWeightGrad(b: B, x: Value, dy: Value, wShape: readonly number[], g: ConvGeometry, strategy?: Strategy, grouped: GroupedMode = 'auto'): Value {
  const [n, cin, h, w] = dims(x);
  const [, cout, ho, wo] = dims(dy);
  const [kh, kw] = g.kernel;
  const cig = cin / g.group;
  if (splitsGroups(g.group, cig, cout! / g.group, grouped)) {
    // per group: the dense kernel on the group's channels of x and dy, the groups' dW stacked along Cout
    const xs = op.Split(b, x, Array(g.group).fill(cig), 1);
    const dys = op.Split(b, dy, Array(g.group).fill(cout! / g.group), 1);
    const dense = { ...g, group: 1 };
    const parts = xs.map((xi, i) => convWeightGrad(b, xi, dys[i]!, [wShape[0]! / g.group, ...wShape.slice(1)], dense, strategy));
    return op.Concat(b, parts, 0);
  }
  const pointwise = kh === 1 && kw === 1 && g.group === 1 && g.strides.every((v) => v === 1) && g.pads.every((v) => v === 0);
  if (pointwise) {
    // [N, Co, HW] x [N, HW, Ci] summed over N (ORT fuses the Transpose into the MatMul)
    const dyr = op.Reshape(b, dy, [n!, cout!, ho! * wo!]);
    const xt = op.Transpose(b, op.Reshape(b, x, [n!, cin!, h! * w!]), [0, 2, 1]);
    return op.Reshape(b, op.ReduceSum(b, op.MatMul(b, dyr, xt), [0], false), [...wShape]);
  }
  const unitStride = g.strides.every((v) => v === 1);
  const chosen = strategy ?? weightGradStrategy(g.group, cin!);
  if (chosen === 'im2col' && g.group === 1 && unitStride) return im2colWeightGrad(b, x, dy, wShape, g);
  if (chosen === 'taps' && g.group === 1 && unitStride) return tapsWeightGrad(b, x, dy, wShape, g);
  const s = blockSize(ho!, wo!, typeof chosen === 'number' ? [chosen, 4, 2] : [2]);
  // X2[ci_l, (gi, n), H, W]: batch = channel within the group, channels = (group, sample)
  const x2 =
    g.group === 1
      ? op.Transpose(b, x, [1, 0, 2, 3])
      : cig === 1
        ? op.Reshape(b, op.Transpose(b, x, [1, 0, 2, 3]), [1, cin! * n!, h!, w!])
        : op.Reshape(b, op.Transpose(b, op.Reshape(b, x, [n!, g.group, cig, h!, w!]), [2, 1, 0, 3, 4]), [cig, g.group * n!, h!, w!]);
  // K2[(co, a, b), n, ho/S, wo/S] = dy[n, co, S·i + a, S·j + b]
  const k2 =
    s === 1
      ? op.Transpose(b, dy, [1, 0, 2, 3])
      : op.Reshape(
          b,
          op.Transpose(b, op.Reshape(b, op.SpaceToDepth(b, dy, s), [n!, s * s, cout!, ho! / s, wo! / s]), [2, 1, 0, 3, 4]),
          [cout! * s * s, n!, ho! / s, wo! / s],
        );
  const [sh, sw] = g.strides;
  const [dh, dw] = g.dilations;
  // trim bottom/right padding that no tap reads
  const slackH = h! + g.pads[0] + g.pads[2] - (sh * (ho! - 1) + dh * (kh - 1) + 1);
  const slackW = w! + g.pads[1] + g.pads[3] - (sw * (wo! - 1) + dw * (kw - 1) + 1);
  const out = op.Conv(b, x2, k2, null, {
    dilations: [s * sh, s * sw],
    pads: [g.pads[0], g.pads[1], Math.max(0, g.pads[2] - slackH), Math.max(0, g.pads[3] - slackW)],
    group: g.group,
  });
  const [, , u, v] = dims(out);
  // dW[co, ci_l, kh, kw] = Σ_ab out[ci_l, (co, a, b), sh·a + dh·kh, sw·b + dw·kw]
  const index: number[] = [];
  for (let a = 0; a < s; a++)
    for (let c = 0; c < s; c++)
      for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) index.push((a * s + c) * u! * v! + (sh * a + dh * i) * v! + (sw * c + dw * j));
  const flat = op.Reshape(b, out, [cig, cout!, s * s * u! * v!]);
  const taps = op.Gather(b, flat, b.int64(index, [s * s, kh * kw]), 2);
  const summed = s === 1 ? op.Reshape(b, taps, [cig, cout!, kh * kw]) : op.ReduceSum(b, taps, [2], false);
  return op.Reshape(b, cig === 1 ? summed : op.Transpose(b, summed, [1, 0, 2]), [...wShape]);
}

/** W[Cout, Cin/g, k, k] -> the weight of the adjoint conv, [Cin, Cout/g, k, k], spatially flipped. */
function adjointWeight(b: B, wt: Value, group: number, flip: boolean): Value {
  const [cout, cig, kh, kw] = dims(wt);
  const cog = cout! / group;
  let w = wt;
  if (cog !== 1 || cig !== 1) {
    w = group === 1 ? op.Transpose(b, w, [1, 0, 2, 3]) : op.Reshape(b, op.Transpose(b, op.Reshape(b, w, [group, cog, cig!, kh!, kw!]), [0, 2, 1, 3, 4]), [cig! * group, cog, kh!, kw!]);
  }
  // the flip as two Gathers of reversed indices, not a negative-step Slice: ORT Web's WebGPU Slice mis-reads the
  // backwards end and returned a 2x2 kernel for a 3x3 one
  const reversed = (n: number) => b.int64(Array.from({ length: n }, (_, i) => n - 1 - i));
  if (flip && kh! > 1) w = op.Gather(b, w, reversed(kh!), 2);
  if (flip && kw! > 1) w = op.Gather(b, w, reversed(kw!), 3);
  return w;
}

/** dL/dx of y = Conv(x, W): a flipped Conv when the stride is 1 (faster than ConvTranspose in ORT), else ConvTranspose. */
export function convInputGrad(b: B, dy: Value, wt: Value, xShape: readonly number[], g: ConvGeometry, grouped: GroupedMode = 'auto'): Value {
  const [n, cin, h, w] = xShape;
  const [, cout, ho, wo] = dims(dy);
  if (splitsGroups(g.group, cin! / g.group, cout! / g.group, grouped)) {
    // per group: the dense input gradient from the group's channels of dy and its rows of W, concatenated along C
    const cog = cout! / g.group;
    const dys = op.Split(b, dy, Array(g.group).fill(cog), 1);
    const ws = op.Split(b, wt, Array(g.group).fill(cog), 0);
    const dense = { ...g, group: 1 };
    return op.Concat(b, dys.map((d, i) => convInputGrad(b, d, ws[i]!, [n!, cin! / g.group, h!, w!], dense)), 1);
  }
  const [kh, kw] = g.kernel;
  const [dh, dw] = g.dilations;
  const flippedPads = [dh * (kh - 1) - g.pads[0], dw * (kw - 1) - g.pads[1], dh * (kh - 1) - g.pads[2], dw * (kw - 1) - g.pads[3]];
  if (g.strides.every((v) => v === 1) && flippedPads.every((p) => p >= 0)) {
    return op.Conv(b, dy, adjointWeight(b, wt, g.group, true), null, { pads: flippedPads, dilations: g.dilations, group: g.group });
  }
  const outputPadding = [
    h! - ((ho! - 1) * g.strides[0] - g.pads[0] - g.pads[2] + dh * (kh - 1) + 1),
    w! - ((wo! - 1) * g.strides[1] - g.pads[1] - g.pads[3] + dw * (kw - 1) + 1),
  ];
  return b.op1('ConvTranspose', [dy, wt], {
    kernel_shape: { kind: 'ints', value: g.kernel },
    strides: { kind: 'ints', value: g.strides },
    pads: { kind: 'ints', value: g.pads },
    dilations: { kind: 'ints', value: g.dilations },
    group: { kind: 'int', value: g.group },
    output_padding: { kind: 'ints', value: outputPadding },
  });
}
