// ReLU near-ties in gradient comparisons between runtimes: a ReLU input within float noise of 0 (|x| < 1e-5 of the
// tensor's largest, not exactly 0) can fall on either side in two runtimes, and its gradient then flows or not: one
// such pixel moves upstream gradients by ~1%. These helpers add a fed nudge to every ReLU input (zero: the graph is
// unchanged), find the near-ties in a first run, and push them to 1e-3 of the largest |x| on their own side, so both
// runtimes route them alike. test/train/parity.test.ts nudges max-pool inputs the same way (addInputNudges).
import { buildTrainingGraph, type TrainingGraph, type TrainingGraphOptions } from '../../src/autodiff/training-graph.ts';
import type { GraphBuilder } from '../../src/ir/builder.ts';
import type { Value } from '../../src/ir/types.ts';
import type { SegmentationModel } from '../../src/models/model.ts';
import * as op from '../../src/ops/index.ts';
import type { TensorMap } from '../../src/runtime/types.ts';

export interface NudgedGraph {
  graph: TrainingGraph;
  /** ReLU input name -> its nudge input. */
  nudges: Map<string, Value>;
}

/**
 * Adds a fed tensor (`nudge.<input>`) to the first input of every `opType` node, inserted right after the input is
 * made: zero leaves the graph's values unchanged, a non-zero nudge moves a near-tie to one side. Returns input name
 * -> nudge input.
 */
export function addInputNudges(b: GraphBuilder, opType: string): Map<string, Value> {
  const nudges = new Map<string, Value>();
  for (const source of new Set(b.nodes.filter((n) => n.opType === opType).map((n) => n.inputs[0]!))) {
    const v = b.value(source);
    const nudge = b.input(`nudge.${source}`, v.shape);
    const moved = op.Add(b, v, nudge);
    const addNode = b.nodes.pop()!;
    b.nodes.splice(b.nodes.findIndex((n) => n.outputs.includes(source)) + 1, 0, addNode);
    b.nodes.forEach((n, i) => {
      if (n.opType === opType && n.inputs[0] === source) b.nodes[i] = { ...n, inputs: [moved.name] };
    });
    nudges.set(source, nudge);
  }
  return nudges;
}

export function trainingGraphWithReluNudges(model: SegmentationModel, o: Omit<TrainingGraphOptions, 'instrument'>): NudgedGraph {
  let nudges = new Map<string, Value>();
  const graph = buildTrainingGraph(model, {
    ...o,
    instrument: (b: GraphBuilder) => {
      nudges = addInputNudges(b, 'Relu');
      return new Map([...nudges.keys()].map((source) => [`relu_input.${source}`, b.value(source)]));
    },
  });
  return { graph, nudges };
}

const count = (shape: readonly unknown[]) => (shape as number[]).reduce((a, d) => a * d, 1);

/** Zero nudges into `feeds` (call before the first run). */
export function zeroNudges(nudges: Map<string, Value>, feeds: TensorMap): void {
  for (const v of nudges.values()) feeds[v.name] = { data: new Float32Array(count(v.shape)), dims: v.shape as number[] };
}

/** Sets the nudges from a first run's outputs; returns how many ReLU inputs were moved off their near-tie. */
export function settleReluTies(nudges: Map<string, Value>, first: TensorMap, feeds: TensorMap): number {
  let moved = 0;
  for (const [source, v] of nudges) {
    const x = first[`relu_input.${source}`]!.data;
    let max = 0;
    for (const e of x) max = Math.max(max, Math.abs(e));
    const nudge = feeds[v.name]!.data;
    for (let i = 0; i < x.length; i++)
      if (x[i] !== 0 && Math.abs(x[i]!) < 1e-5 * max) {
        nudge[i] = (x[i]! > 0 ? 1 : -1) * 1e-3 * max;
        moved++;
      }
  }
  return moved;
}
