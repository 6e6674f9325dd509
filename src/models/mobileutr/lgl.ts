// LGL (local-global-local) blocks of the MobileUtr bottleneck, with the official module names.
import type { GraphBuilder } from '../../ir/builder.ts';
import type { Value } from '../../ir/types.ts';
import * as op from '../../ops/index.ts';
import { batchNorm2d, conv2d, convTranspose2d, dropPath, gelu, layerNorm, linear } from '../../nn/layers.ts';
import { fromRows, toRows } from '../../nn/tokens.ts';

/** x + x·(sigmoid(branch) − 0.5), computed as x·(sigmoid(branch) + 0.5). */
function sigmoidGate(b: GraphBuilder, x: Value, branch: Value): Value {
  return op.Mul(b, x, op.Add(b, op.Sigmoid(b, branch), b.constant([0.5], [])));
}

/** LocalAgg: sigmoid-gated depthwise k×k (9×9 in the official code), 1x1-dwkxk-1x1 and grouped-3×3 CMlp branches. */
export function localAgg(b: GraphBuilder, x: Value, dropRate: number, kernel = 9): Value {
  const dim = x.shape[1] as number;
  return b.module('LocalAgg', () => {
      x = sigmoidGate(b, x, conv2d(b, 'pos_embed', x, dim, { kernel, groups: dim }));
      let branch = conv2d(b, 'conv1', batchNorm2d(b, 'norm1', x), dim, { kernel: 1 });
      branch = conv2d(b, 'conv2', conv2d(b, 'attn', branch, dim, { kernel, groups: dim }), dim, { kernel: 1 });
      x = sigmoidGate(b, x, dropPath(b, branch, dropRate));
      const normed = batchNorm2d(b, 'norm2', x);
      const mlp = b.scope('mlp', () => {
        const hidden = gelu(b, conv2d(b, 'fc1', normed, 4 * dim, { kernel: 3, groups: dim }));
        return conv2d(b, 'fc2', hidden, dim, { kernel: 3, groups: dim });
      });
      return sigmoidGate(b, x, dropPath(b, mlp, dropRate));
    });
}

/** Multi-head self-attention on token rows; with `sampleRatio` > 1 tokens are decimated, then restored by LocalProp. */
function attention(b: GraphBuilder, rows: Value, h: number, w: number, heads: number, sampleRatio: number): Value {
  const c = rows.shape[1] as number;
  const headDim = c / heads;
  return b.scope('attn', () => {
    let th = h;
    let tw = w;
    let tokens = rows;
    if (sampleRatio > 1) {
      // AvgPool2d(kernel 1, stride r) keeps the top-left pixel of each r×r cell: a strided Slice.
      const map = op.Slice(b, fromRows(b, rows, h, w), [0, 0], [h, w], [2, 3], [sampleRatio, sampleRatio]);
      th = map.shape[2] as number;
      tw = map.shape[3] as number;
      tokens = toRows(b, map);
    }
    const count = th * tw;
    const qkv = op.Reshape(b, linear(b, 'qkv', tokens, 3 * c), [-1, count, 3 * c]);
    const [q, k, v] = op.Split(b, qkv, [c, c, c], 2).map((t) => op.Reshape(b, t, [-1, count, heads, headDim]));
    const qh = op.Mul(b, op.Transpose(b, q!, [0, 2, 1, 3]), b.constant([headDim ** -0.5], []));
    const kt = op.Transpose(b, k!, [0, 2, 3, 1]);
    const vh = op.Transpose(b, v!, [0, 2, 1, 3]);
    const weights = op.Softmax(b, op.MatMul(b, qh, kt), -1);
    let out = op.Reshape(b, op.Transpose(b, op.MatMul(b, weights, vh), [0, 2, 1, 3]), [-1, c]);
    if (sampleRatio > 1) {
      const up = convTranspose2d(b, 'LocalProp', fromRows(b, out, th, tw), c, { kernel: sampleRatio, stride: sampleRatio, groups: c });
      out = layerNorm(b, 'norm', toRows(b, up), 1e-5);
    }
    return linear(b, 'proj', out, c);
  });
}

/** DropPath on token rows: one mask entry per sample. */
function dropRows(b: GraphBuilder, rows: Value, tokens: number, rate: number): Value {
  if (!b.training || rate === 0) return rows;
  const c = rows.shape[1] as number;
  return op.Reshape(b, dropPath(b, op.Reshape(b, rows, [-1, tokens, c]), rate), [-1, c]);
}

/** SelfAttn: x + dw3x3(x); then pre-norm attention and MLP residuals on tokens (LayerNorm eps 1e-6). */
export function selfAttn(b: GraphBuilder, x: Value, heads: number, sampleRatio: number, dropRate: number): Value {
  const [, c, h, w] = x.shape as [unknown, number, number, number];
  return b.module('SelfAttn', () => {
      x = op.Add(b, x, conv2d(b, 'pos_embed', x, c, { kernel: 3, groups: c }));
      let rows = toRows(b, x);
      const attn = attention(b, layerNorm(b, 'norm1', rows, 1e-6), h, w, heads, sampleRatio);
      rows = op.Add(b, rows, dropRows(b, attn, h * w, dropRate));
      const normed = layerNorm(b, 'norm2', rows, 1e-6);
      const mlp = b.scope('mlp', () => linear(b, 'fc2', gelu(b, linear(b, 'fc1', normed, 4 * c)), c));
      rows = op.Add(b, rows, dropRows(b, mlp, h * w, dropRate));
      return fromRows(b, rows, h, w);
    });
}

/** One LGL block, module `name`: LocalAgg (only when sampleRatio > 1, depthwise kernel `kernel`) then SelfAttn. */
export function lglBlock(b: GraphBuilder, name: number, x: Value, heads: number, sampleRatio: number, dropRate: number, kernel = 9): Value {
  return b.module(name, () => selfAttn(b, sampleRatio > 1 ? localAgg(b, x, dropRate, kernel) : x, heads, sampleRatio, dropRate));
}
