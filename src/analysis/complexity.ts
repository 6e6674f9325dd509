import type { GraphBuilder } from '../ir/builder.ts';
import { dimProduct } from '../ir/dims.ts';
import type { Dim, GraphNode } from '../ir/types.ts';

/** Multiply-accumulates per sample: convs and linears (what papers report), attention matmuls separately. */
export interface MacCount {
  weights: number;
  attention: number;
}

/** Evaluates a dim for one sample (the symbolic batch N = 1). */
const perSample = (d: Dim): number => (typeof d === 'number' ? d : Number(String(dimProduct([d])).split('*')[1] ?? 1));

const numelPerSample = (shape: readonly Dim[]) => shape.reduce<number>((n, d) => n * perSample(d), 1);

/** MACs of one node, by static analysis of its shapes. */
export function nodeMacs(b: GraphBuilder, node: GraphNode): MacCount {
  const shape = (i: number) => b.value(node.inputs[i]!).shape;
  const out = b.value(node.outputs[0]!).shape;
  switch (node.opType) {
    case 'Conv': {
      const w = shape(1) as number[];
      return { weights: numelPerSample(out) * w[1]! * w[2]! * w[3]!, attention: 0 };
    }
    case 'ConvTranspose': {
      const w = shape(1) as number[];
      return { weights: numelPerSample(shape(0)) * w[1]! * w[2]! * w[3]!, attention: 0 };
    }
    case 'Gemm': {
      const [rows, inner] = shape(0);
      return { weights: perSample(rows!) * (inner as number) * (out[1] as number), attention: 0 };
    }
    case 'MatMul': {
      const a = shape(0);
      return { weights: 0, attention: numelPerSample(out) * (a[a.length - 1] as number) };
    }
    default:
      return { weights: 0, attention: 0 };
  }
}

export function graphMacs(b: GraphBuilder): MacCount {
  const total = { weights: 0, attention: 0 };
  for (const node of b.nodes) {
    const m = nodeMacs(b, node);
    total.weights += m.weights;
    total.attention += m.attention;
  }
  return total;
}

/** One row of the layer table: a top-level module (the outermost one that records an output), its parameters and MACs. */
export interface LayerRow {
  module: string;
  params: number;
  macs: number;
  output: string;
}

export function layerTable(b: GraphBuilder): LayerRow[] {
  const modules = [...b.taps.keys()].sort((x, y) => x.length - y.length);
  const moduleOf = (param: string) => modules.find((m) => param.startsWith(`${m}.`)) ?? param.slice(0, param.lastIndexOf('.'));
  const rows = new Map<string, LayerRow>();
  const row = (module: string) => {
    let r = rows.get(module);
    if (!r) rows.set(module, (r = { module, params: 0, macs: 0, output: '' }));
    return r;
  };
  for (const p of b.params.values()) if (p.kind === 'parameter') row(moduleOf(p.value.name)).params += p.data.length;
  for (const node of b.nodes) {
    const weight = node.inputs.find((i) => b.params.has(i));
    if (weight) row(moduleOf(weight)).macs += nodeMacs(b, node).weights;
  }
  for (const r of rows.values()) {
    const out = b.taps.get(r.module);
    if (out) r.output = `[${out.shape.join(',')}]`;
  }
  return [...rows.values()];
}
