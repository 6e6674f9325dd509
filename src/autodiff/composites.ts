// Composite ops: subgraphs that are differentiated as one op (one rule in rules.ts) and lowered back to ONNX
// opset-17 ops when the graph is encoded.
//
// - Gelu: as five elementwise ops it costs 5 passes forward and 9 backward (every intermediate is kept for the
//   chain rule). As one node its backward recomputes from x alone (9 passes), which leaves the forward chain's
//   intermediates unused, so ONNX Runtime fuses the lowered chain into a single Gelu kernel (1 pass) and does not
//   keep the intermediates in memory.
// - SoftmaxMatMul: attention's softmax(S)·V. Its backward takes rowsum(dP∘P) as rowsum(dO∘O) (FlashAttention's
//   identity), on [.., T, d] instead of [.., T, T]: two passes fewer over the attention matrix.
// - Attention: Softmax(scale·A·B)·V whole. Its backward recomputes P from A and B instead of keeping it from the
//   forward: at 256x256 the three 1024-token attention matrices are 384 MB of the step's ~2 GB of live tensors, and
//   the recompute costs one MatMul and one Softmax per block. The recompute must not be the forward's nodes again
//   (ONNX Runtime's common-subexpression elimination would merge them and keep P), and it must run in the backward:
//   its scale depends on dO (rules.ts), so both hold by data dependence, whatever order ONNX Runtime picks.
import { floatAttr, intAttr } from '../ir/attrs.ts';
import type { GraphBuilder } from '../ir/builder.ts';
import type { GraphNode } from '../ir/types.ts';

/** Composite op types and their lowering to opset-17 nodes. */
const LOWERINGS = new Map<string, (b: GraphBuilder, node: GraphNode) => GraphNode[]>([
  [
    'Gelu',
    // the exact form ORT's GeluFusion recognises: Div by √2 (a Mul by 1/√2 is not fused)
    (b, n) => {
      const [x] = n.inputs as [string];
      const [y] = n.outputs as [string];
      const c = (v: number) => b.constant([v], []).name;
      const t = (k: string) => `${n.name}/${k}`;
      const node = (opType: string, inputs: string[], out: string): GraphNode => ({ opType, name: t(`${opType}:${out}`), inputs, outputs: [out], attrs: {} });
      return [
        node('Div', [x, c(Math.SQRT2)], t('u')),
        node('Erf', [t('u')], t('e')),
        node('Add', [t('e'), c(1)], t('a')),
        node('Mul', [x, t('a')], t('p')),
        node('Mul', [t('p'), c(0.5)], y),
      ];
    },
  ],
  [
    'SoftmaxMatMul',
    // outputs [O, P]: P = Softmax(S) is kept for the backward
    (_b, n) => [
      { opType: 'Softmax', name: `${n.name}/Softmax`, inputs: [n.inputs[0]!], outputs: [n.outputs[1]!], attrs: n.attrs },
      { opType: 'MatMul', name: `${n.name}/MatMul`, inputs: [n.outputs[1]!, n.inputs[1]!], outputs: [n.outputs[0]!], attrs: {} },
    ],
  ],
  [
    'Attention',
    // inputs [A, B, V], output O = Softmax(scale·A·B)·V, with the scale on A as the model wrote it
    (b, n) => {
      const [a, bm, v] = n.inputs as [string, string, string];
      const scale = floatAttr(n, 'scale', 1);
      const t = (k: string) => `${n.name}/${k}`;
      const scaled: GraphNode[] = scale === 1 ? [] : [{ opType: 'Mul', name: t('Mul'), inputs: [a, b.constant([scale], []).name], outputs: [t('a')], attrs: {} }];
      return [
        ...scaled,
        { opType: 'MatMul', name: t('MatMul:s'), inputs: [scale === 1 ? a : t('a'), bm], outputs: [t('s')], attrs: {} },
        { opType: 'Softmax', name: t('Softmax'), inputs: [t('s')], outputs: [t('p')], attrs: { axis: { kind: 'int', value: -1 } } },
        { opType: 'MatMul', name: t('MatMul:o'), inputs: [t('p'), v], outputs: [n.outputs[0]!], attrs: {} },
      ];
    },
  ],
]);

/** Lowers composite nodes for encoding; other nodes pass through. */
export function lowerComposites(b: GraphBuilder, nodes: readonly GraphNode[]): GraphNode[] {
  return nodes.flatMap((n) => LOWERINGS.get(n.opType)?.(b, n) ?? [n]);
}

/** The value of a scalar float constant, or undefined. */
function scalarOf(b: GraphBuilder, name: string | undefined): number | undefined {
  const d = name ? b.constants.get(name)?.data : undefined;
  return d instanceof Float32Array && d.length === 1 ? d[0] : undefined;
}

const near = (a: number | undefined, b: number) => a !== undefined && Math.abs(a - b) <= 1e-6 * Math.abs(b);

/** Producer and consumers of each value of `b.nodes`, by node index. */
function nodeIndex(b: GraphBuilder) {
  const consumers = new Map<string, number[]>();
  b.nodes.forEach((n, i) => n.inputs.forEach((v) => v && consumers.set(v, [...(consumers.get(v) ?? []), i])));
  const producer = new Map<string, number>();
  b.nodes.forEach((n, i) => n.outputs.forEach((v) => producer.set(v, i)));
  /** The index of the value's consumer when it has exactly one. */
  const onlyConsumer = (value: string): number | undefined => {
    const c = consumers.get(value);
    return c && c.length === 1 ? c[0] : undefined;
  };
  return { producer, onlyConsumer };
}

/** Drops the nodes mapped to null and swaps in the nodes mapped to a node; returns how many were swapped in. */
function applyReplacements(b: GraphBuilder, replaced: ReadonlyMap<number, GraphNode | null>): number {
  const kept = b.nodes.flatMap((n, i) => (replaced.has(i) ? (replaced.get(i) ? [replaced.get(i)!] : []) : [n]));
  b.nodes.splice(0, b.nodes.length, ...kept);
  return [...replaced.values()].filter(Boolean).length;
}

/**
 * Replaces each erf-GELU chain x·(erf(x·(1/√2)) + 1)·0.5 (src/nn/layers.ts `gelu`; a Div by √2 also matches)
 * whose intermediates have no other consumer by one 'Gelu' node with the chain's output name. Returns the count.
 */
export function fuseGelu(b: GraphBuilder): number {
  const { producer, onlyConsumer } = nodeIndex(b);
  const only = (value: string): GraphNode | undefined => {
    const i = onlyConsumer(value);
    return i === undefined ? undefined : b.nodes[i];
  };
  const other = (n: GraphNode, v: string) => (n.inputs[0] === v ? n.inputs[1] : n.inputs[0]);

  const replaced = new Map<number, GraphNode | null>();
  b.nodes.forEach((erf, i) => {
    if (erf.opType !== 'Erf') return;
    const scaleIndex = producer.get(erf.inputs[0]!);
    const scale = scaleIndex === undefined ? undefined : b.nodes[scaleIndex]!;
    if (!scale || only(scale.outputs[0]!) !== erf) return;
    let x: string | undefined;
    if (scale.opType === 'Mul') {
      const [p, q] = scale.inputs;
      x = near(scalarOf(b, q), Math.SQRT1_2) ? p : near(scalarOf(b, p), Math.SQRT1_2) ? q : undefined;
    } else if (scale.opType === 'Div' && near(scalarOf(b, scale.inputs[1]), Math.SQRT2)) x = scale.inputs[0];
    const add = only(erf.outputs[0]!);
    if (!x || add?.opType !== 'Add' || !near(scalarOf(b, other(add, erf.outputs[0]!)), 1)) return;
    const mul = only(add.outputs[0]!);
    if (mul?.opType !== 'Mul' || other(mul, add.outputs[0]!) !== x) return;
    const half = only(mul.outputs[0]!);
    if (half?.opType !== 'Mul' || !near(scalarOf(b, other(half, mul.outputs[0]!)), 0.5)) return;
    const chain = [scaleIndex!, i, b.nodes.indexOf(add), b.nodes.indexOf(mul), b.nodes.indexOf(half)];
    if (chain.some((k) => replaced.has(k))) return;
    chain.forEach((k) => replaced.set(k, null));
    // the composite takes the place of the chain's last node, where all its inputs are defined
    replaced.set(chain[4]!, { opType: 'Gelu', name: `${half.name}/Gelu`, inputs: [x], outputs: [half.outputs[0]!], attrs: {} });
  });
  return applyReplacements(b, replaced);
}

/**
 * Replaces MatMul(A, B) -> Softmax(last axis) -> MatMul(P, V), where S and P have no other consumer, by one
 * 'Attention' node; A = Mul(A0, c) with a scalar constant c (no other consumer) becomes input A0 and attribute
 * scale c. Returns the count.
 */
export function fuseAttention(b: GraphBuilder): number {
  const { producer, onlyConsumer } = nodeIndex(b);
  const replaced = new Map<number, GraphNode | null>();
  b.nodes.forEach((softmax, i) => {
    if (softmax.opType !== 'Softmax') return;
    const rank = b.value(softmax.inputs[0]!).shape.length;
    const axis = intAttr(softmax, 'axis', -1);
    const sIndex = producer.get(softmax.inputs[0]!);
    const pvIndex = onlyConsumer(softmax.outputs[0]!);
    if ((axis !== -1 && axis !== rank - 1) || sIndex === undefined || pvIndex === undefined) return;
    const [qk, pv] = [b.nodes[sIndex]!, b.nodes[pvIndex]!];
    if (qk.opType !== 'MatMul' || onlyConsumer(qk.outputs[0]!) !== i || pv.opType !== 'MatMul' || pv.inputs[0] !== softmax.outputs[0] || pv.inputs[1] === softmax.outputs[0]) return;
    if ([sIndex, i, pvIndex].some((k) => replaced.has(k))) return;
    let [a, scale] = [qk.inputs[0]!, 1];
    const mulIndex = producer.get(a);
    const mul = mulIndex === undefined ? undefined : b.nodes[mulIndex]!;
    if (mul?.opType === 'Mul' && onlyConsumer(a) === sIndex && !replaced.has(mulIndex!)) {
      const [p, q] = mul.inputs as [string, string];
      const c = scalarOf(b, q) ?? scalarOf(b, p);
      if (c !== undefined) {
        [a, scale] = [scalarOf(b, q) !== undefined ? p : q, c];
        replaced.set(mulIndex!, null);
      }
    }
    replaced.set(sIndex, null);
    replaced.set(i, null);
    replaced.set(pvIndex, {
      opType: 'Attention',
      name: `${pv.name}/Attention`,
      inputs: [a, qk.inputs[1]!, pv.inputs[1]!],
      outputs: [pv.outputs[0]!],
      attrs: { scale: { kind: 'float', value: scale } },
    });
  });
  return applyReplacements(b, replaced);
}

/** Replaces Softmax(S, last axis) whose only consumer is MatMul(P, V) by one 'SoftmaxMatMul' node. Returns the count. */
export function fuseSoftmaxMatMul(b: GraphBuilder): number {
  const { onlyConsumer } = nodeIndex(b);
  const replaced = new Map<number, GraphNode | null>();
  b.nodes.forEach((softmax, i) => {
    if (softmax.opType !== 'Softmax') return;
    const rank = b.value(softmax.inputs[0]!).shape.length;
    const axis = intAttr(softmax, 'axis', -1);
    const mmIndex = onlyConsumer(softmax.outputs[0]!);
    const mm = mmIndex === undefined ? undefined : b.nodes[mmIndex]!;
    if ((axis !== -1 && axis !== rank - 1) || mm?.opType !== 'MatMul' || mm.inputs[0] !== softmax.outputs[0] || mm.inputs[1] === softmax.outputs[0]) return;
    replaced.set(i, null);
    replaced.set(mmIndex!, {
      opType: 'SoftmaxMatMul',
      name: `${mm.name}/SoftmaxMatMul`,
      inputs: [softmax.inputs[0]!, mm.inputs[1]!],
      outputs: [mm.outputs[0]!, softmax.outputs[0]!],
      attrs: { axis: { kind: 'int', value: -1 } },
    });
  });
  return applyReplacements(b, replaced);
}

/** All fusions, in place; run on a forward graph before differentiating it. */
export function fuseComposites(b: GraphBuilder): { gelu: number; attention: number; softmaxMatMul: number } {
  return { gelu: fuseGelu(b), attention: fuseAttention(b), softmaxMatMul: fuseSoftmaxMatMul(b) };
}
