// Kernel time of single ONNX ops and of the alternative formulations the gradient rules choose between, at
// MobileUtr's largest training shapes (batch 8, 256x256), at 1 and 2 threads in the same run. The time is ONNX
// Runtime's per-node kernel time (fastest of the runs), so copying inputs and outputs through Node does not count.
//   npm run bench:ops -- [--threads 1,2] [--runs 7] [--only <substring>]
// What it shows: element-wise passes over [8,64,256,256] are bound by memory bandwidth (a second thread gains
// little), so the backward's cost is mostly its number of passes over the large tensors.
import { Command } from 'commander';
import { convInputGrad, convWeightGrad, type ConvGeometry } from '../src/autodiff/conv-grads.ts';
import { GraphBuilder } from '../src/ir/builder.ts';
import { encodeModel } from '../src/ir/onnx.ts';
import { attr, type Value } from '../src/ir/types.ts';
import * as op from '../src/ops/index.ts';
import { NodeSession } from '../src/runtime/session.ts';
import type { TensorMap } from '../src/runtime/types.ts';
import { Rng } from '../src/util/rng.ts';
import { readProfile } from './profile.ts';

const opts = new Command()
  .option('--threads <list>', 'comma-separated thread counts', '1,2')
  .option('--runs <n>', 'runs per case (the fastest counts)', '7')
  .option('--only <text>', 'cases whose name contains this')
  .parse()
  .opts();

type B = GraphBuilder;
const N = 8;
const BIG = [N, 64, 256, 256];
const ATTN = [N, 4, 1024, 1024];
const HEAD = [N, 4, 1024, 32];
const zero = (b: B) => b.constant([0], []);

/**
 * CMUNeXt's groups=2 fusion convs (Up_conv2..5: 3x3, pad 1, on cat(skip, up)) at batch 8, 256x256: the forward
 * and both gradients, the gradients as one grouped Conv ('native') and per group with the dense kernels ('split');
 * then 8 groups of 16 channels.
 */
function groupedConvCases(): [string, (b: B) => Value[]][] {
  // the last: the most groups that 'auto' splits
  const shapes: [string, number, number, number][] = [['Up_conv2', 32, 256, 2], ['Up_conv3', 64, 128, 2], ['Up_conv4', 256, 64, 2], ['Up_conv5', 320, 32, 2], ['8 groups', 128, 64, 8]];
  const cases: [string, (b: B) => Value[]][] = [];
  for (const [name, c, s, group] of shapes) {
    const g: ConvGeometry = { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group };
    const x = [N, c, s, s];
    const w = [c, c / group, 3, 3];
    const label = `grouped ${name} [8,${c},${s},${s}] g${group}`;
    cases.push([`${label} forward`, (b) => [op.Conv(b, b.input('x', x), b.input('w', w), null, { pads: g.pads, group })]]);
    for (const mode of ['native', 'split'] as const) {
      cases.push([`${label} dx ${mode}`, (b) => [convInputGrad(b, b.input('dy', x), b.input('w', w), x, g, mode)]]);
      cases.push([`${label} dW ${mode}`, (b) => [convWeightGrad(b, b.input('x', x), b.input('dy', x), w, g, undefined, mode)]]);
    }
    cases.push([`${label} dW split im2col`, (b) => [convWeightGrad(b, b.input('x', x), b.input('dy', x), w, g, 'im2col', 'split')]]);
  }
  return cases;
}

const CASES: [string, (b: B) => Value[]][] = [
  ['Mul [8,64,256,256]', (b) => [op.Mul(b, b.input('x', BIG), b.input('y', BIG))]],
  ['Erf', (b) => [op.Erf(b, b.input('x', BIG))]],
  ['Exp', (b) => [op.Exp(b, b.input('x', BIG))]],
  ['Gelu (fused by ORT)', (b) => {
    const x = b.input('x', BIG);
    return [op.Mul(b, op.Mul(b, x, op.Add(b, op.Erf(b, op.Div(b, x, b.constant([Math.SQRT2], []))), b.constant([1], []))), b.constant([0.5], []))];
  }],
  ['ReduceSum over N,H,W', (b) => [op.ReduceSum(b, b.input('x', BIG), [0, 2, 3], false)]],
  ['ReduceSum over N,H,W in two stages (H·W, then N)', (b) => [op.ReduceSum(b, op.ReduceSum(b, op.Reshape(b, b.input('x', BIG), [N, 64, 256 * 256]), [2], false), [0], false)]],
  ['BatchNormalization, training_mode', (b) => {
    const c = (v: number) => b.constant(new Float32Array(64).fill(v), [64], { shared: false });
    return b.op('BatchNormalization', [b.input('x', BIG), c(1), c(0), c(0), c(1)], { momentum: attr.float(0), training_mode: attr.int(1) }, 3);
  }],
  ['channel affine: BatchNormalization (inference)', (b) => [op.BatchNormalization(b, b.input('x', BIG), b.input('s', [64]), b.input('t', [64]), b.constant(new Float32Array(64), [64]), b.constant(new Float32Array(64).fill(1), [64]), 0)]],
  ['channel affine: Mul + Add', (b) => [op.Add(b, op.Mul(b, b.input('x', BIG), b.input('s', [1, 64, 1, 1])), b.input('t', [1, 64, 1, 1]))]],
  ['maxpool 2 grad: ArgMax over SpaceToDepth, DepthToSpace', (b) => {
    const [c, h] = [16, 256];
    const first = op.ArgMax(b, op.Reshape(b, op.SpaceToDepth(b, b.input('x', [N, c, h, h]), 2), [N, 4, c, h / 2, h / 2]), 1);
    const onehot = op.Equal(b, first, b.int64([0, 1, 2, 3], [1, 4, 1, 1, 1]));
    const routed = op.Where(b, onehot, op.Reshape(b, b.input('dy', [N, c, h / 2, h / 2]), [N, 1, c, h / 2, h / 2]), zero(b));
    return [op.DepthToSpace(b, op.Reshape(b, routed, [N, 4 * c, h / 2, h / 2]), 2)];
  }],
  ['maxpool 2 grad: MaxPool indices, MaxUnpool', (b) => {
    const [c, h] = [16, 256];
    const [, indices] = b.op('MaxPool', [b.input('x', [N, c, h, h])], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) }, 2);
    return [b.op1('MaxUnpool', [b.input('dy', [N, c, h / 2, h / 2]), indices!, b.int64([N, c, h, h])], { kernel_shape: attr.ints([2, 2]), strides: attr.ints([2, 2]) })];
  }],
  ['relu grad: Where(y > 0, dy, 0)', (b) => [op.Where(b, op.Greater(b, b.input('y', BIG), zero(b)), b.input('dy', BIG), zero(b))]],
  ['relu grad: dy * float(y > 0)', (b) => [op.Mul(b, b.input('dy', BIG), op.Cast(b, op.Greater(b, b.input('y', BIG), zero(b)), 'float32'))]],
  ['relu grad: dy * Sign(y) (y >= 0)', (b) => [op.Mul(b, b.input('dy', BIG), op.Sign(b, b.input('y', BIG)))]],
  ['conv 1x1 16->64, NCHW (weights an input)', (b) => [op.Conv(b, b.input('x', [N, 16, 256, 256]), b.input('w', [64, 16, 1, 1]), null)]],
  ['depthwise 3x3, 16 ch, NCHW (weights an input)', (b) => [op.Conv(b, b.input('x', [N, 16, 256, 256]), b.input('w', [16, 1, 3, 3]), null, { pads: [1, 1, 1, 1], group: 16 })]],
  ...groupedConvCases(),
  ['attention P·dO', (b) => [op.MatMul(b, b.input('p', ATTN), b.input('do', HEAD))]],
  ['attention Pᵀ·dO (transposed operand)', (b) => [op.MatMul(b, op.Transpose(b, b.input('p', ATTN), [0, 1, 3, 2]), b.input('do', HEAD))]],
  ['attention dKᵀ = Qᵀ·dS ([.,32,1024] out)', (b) => [op.MatMul(b, op.Transpose(b, b.input('q', HEAD), [0, 1, 3, 2]), b.input('ds', ATTN))]],
  ['attention dK = dSᵀ·Q ([.,1024,32] out)', (b) => [op.MatMul(b, op.Transpose(b, b.input('ds', ATTN), [0, 1, 3, 2]), b.input('q', HEAD))]],
  ['attention dQ = dS·(Kᵀ)ᵀ (Kᵀ stored)', (b) => [op.MatMul(b, b.input('ds', ATTN), op.Transpose(b, b.input('kt', [N, 4, 32, 1024]), [0, 1, 3, 2]))]],
  ['attention dQ = dS·K (K stored)', (b) => [op.MatMul(b, b.input('ds', ATTN), b.input('k', HEAD))]],
  ['attention dP = dO·Vᵀ', (b) => [op.MatMul(b, b.input('do', HEAD), op.Transpose(b, b.input('v', HEAD), [0, 1, 3, 2]))]],
  ['attention Transpose P', (b) => [op.Transpose(b, b.input('p', ATTN), [0, 1, 3, 2])]],
  ['attention Softmax last axis', (b) => [op.Softmax(b, b.input('s', ATTN), -1)]],
  ['attention Softmax axis -2', (b) => [op.Softmax(b, b.input('s', ATTN), -2)]],
  ['attention ReduceSum axis -2', (b) => [op.ReduceSum(b, b.input('s', ATTN), [-2])]],
  ['attention ReduceSum axis -1', (b) => [op.ReduceSum(b, b.input('s', ATTN), [-1])]],
  ['attention Exp(S - L) broadcast row', (b) => [op.Exp(b, op.Sub(b, b.input('s', ATTN), b.input('l', [N, 4, 1, 1024])))]],
  ['attention Sᵀ = K·Qᵀ (both [.,1024,32])', (b) => [op.MatMul(b, b.input('k', HEAD), op.Transpose(b, b.input('q', HEAD), [0, 1, 3, 2]))]],
  ['attention S = Q·Kᵀ (Kᵀ stored)', (b) => [op.MatMul(b, b.input('q', HEAD), b.input('kt', [N, 4, 32, 1024]))]],
];

async function kernelMs(name: string, build: (b: B) => Value[], threads: number, runs: number): Promise<string> {
  const b = new GraphBuilder({ rng: new Rng(1) });
  const outputs = build(b);
  const initializers = [...b.constants.values()].map((c) => ({ value: c.value, data: c.data }));
  const prefix = `/tmp/mobileutr-ops-${process.pid}-`;
  const session = await NodeSession.create(encodeModel({ name, nodes: b.nodes, inputs: b.inputs, outputs, initializers }), { threads, profilePrefix: prefix });
  const rng = new Rng(3);
  const feeds: TensorMap = {};
  for (const v of b.inputs) {
    const dims = v.shape as number[];
    feeds[v.name] = { data: Float32Array.from({ length: dims.reduce((p, d) => p * d, 1) }, () => rng.normal()), dims };
  }
  for (let i = 0; i < runs + 1; i++) await session.run(feeds);
  session.endProfiling();
  await session.release();
  const p = readProfile(prefix, 1);
  const parts = p.nodes.length > 6 ? p.byOpType : p.nodes.map((n) => [n.opType, n.ms] as const);
  return `${p.totalMs.toFixed(1)} (${parts.map(([t, ms]) => `${t} ${ms.toFixed(1)}`).join(' + ')})`;
}

const threads = String(opts.threads).split(',').map(Number);
const runs = Number(opts.runs);
console.log(`kernel ms, fastest of ${runs} runs; columns: ${threads.map((t) => `${t} thread(s)`).join(' | ')}`);
for (const [name, build] of CASES) {
  if (opts.only && !name.includes(String(opts.only))) continue;
  const cells: string[] = [];
  for (const t of threads) cells.push(await kernelMs(name, build, t, runs));
  console.log(`${name.padEnd(56)} ${cells.join(' | ')}`);
}
