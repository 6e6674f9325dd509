// Reverse-mode autodiff over a GraphBuilder: walk the forward nodes backwards, emitting gradient nodes into the same builder.
import type { GraphBuilder } from '../ir/builder.ts';
import { broadcastShapes, dimsEqual } from '../ir/dims.ts';
import type { Value } from '../ir/types.ts';
import * as op from '../ops/index.ts';
import { gradientRule } from './rules.ts';

/** A value to differentiate and the gradient flowing into it (default: 1, for a scalar loss). */
export interface Root {
  value: Value;
  grad?: Value;
}

/** Sums a gradient in a broadcast shape back to `shape`, or expands a smaller one to it. */
export function fitToShape(b: GraphBuilder, g: Value, shape: Value['shape']): Value {
  if (dimsEqual(g.shape, shape)) return g;
  const lead = g.shape.length - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.shape.length; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  let out = g;
  if (axes.length > 0) out = op.ReduceSum(b, out, axes, true);
  if (out.shape.length !== shape.length) out = op.Reshape(b, out, shape as number[]);
  if (!dimsEqual(out.shape, shape)) {
    if (!dimsEqual(broadcastShapes(out.shape, shape), shape)) throw new Error(`gradient of shape [${g.shape.join(',')}] does not fit [${shape.join(',')}]`);
    out = op.Expand(b, out, shape as number[]);
  }
  return out;
}

/**
 * Emits the gradients of `roots` with respect to `wrt` and returns them by value name (null: no path to a root).
 * Only nodes that depend on `wrt` and reach a root are differentiated; fan-out contributions are summed with one Sum.
 *
 * @example
 * const loss = ...; // scalar Value built in b
 * const grads = backward(b, { value: loss }, [...params]);
 */
export function backward(b: GraphBuilder, roots: Root | readonly Root[], wrt: readonly Value[]): Map<string, Value | null> {
  const rootList = Array.isArray(roots) ? (roots as readonly Root[]) : [roots as Root];
  const nodes = b.nodes.slice();
  const dependent = new Set(wrt.map((v) => v.name));
  for (const n of nodes) if (n.inputs.some((i) => dependent.has(i))) for (const o of n.outputs) dependent.add(o);
  const reaches = new Set(rootList.map((r) => r.value.name));
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (n.outputs.some((o) => reaches.has(o))) for (const input of n.inputs) if (input) reaches.add(input);
  }
  const relevant = (name: string) => name !== '' && dependent.has(name) && reaches.has(name);

  const pending = new Map<string, Value[]>();
  const add = (name: string, g: Value) => {
    const list = pending.get(name) ?? [];
    list.push(fitToShape(b, g, b.value(name).shape));
    pending.set(name, list);
  };
  const total = (name: string): Value | null => {
    const list = pending.get(name);
    if (!list || list.length === 0) return null;
    const sum = list.length === 1 ? list[0]! : op.Sum(b, list);
    pending.set(name, [sum]);
    return sum;
  };
  for (const r of rootList) {
    const one = b.constant([1], []);
    add(r.value.name, r.grad ?? (r.value.shape.length === 0 ? one : op.Expand(b, one, r.value.shape as number[])));
  }

  return b.scope('grad', () => {
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i]!;
      if (!node.outputs.some(relevant)) continue;
      const grads = node.outputs.map(total);
      if (grads.every((g) => g === null)) continue;
      const needs = node.inputs.map(relevant);
      // gradient nodes are named after the forward node's module (grad.<module>.<op>), for profiles
      const module = node.name.lastIndexOf('.') > 0 ? node.name.slice(0, node.name.lastIndexOf('.')) : '';
      const rule = gradientRule(node);
      const results = b.scope(module || 'root', () => rule({
        b,
        node,
        inputs: node.inputs.map((name) => (name ? b.value(name) : undefined)),
        outputs: node.outputs.map((name) => b.value(name)),
        grads,
        needs,
      }));
      node.inputs.forEach((name, j) => {
        const g = results[j];
        if (needs[j] && g) add(name, g);
      });
    }
    return new Map(wrt.map((v) => [v.name, total(v.name)]));
  });
}
