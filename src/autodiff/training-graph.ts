// The training graph: train-mode forward + loss + gradients + optimizer update, so one session.run is one step.
import type { GraphBuilder } from '../ir/builder.ts';
import { encodeModel } from '../ir/onnx.ts';
import type { GraphNode, Value } from '../ir/types.ts';
import type { SegmentationModel } from '../models/model.ts';
import { segmentationLoss } from '../nn/losses.ts';
import * as op from '../ops/index.ts';
import type { Optimizer } from '../optim/optimizers.ts';
import { backward } from './backward.ts';
import { fuseComposites, lowerComposites } from './composites.ts';

/** Builds the loss from logits [N, K, H, W] and a target of the same shape. */
export type LossBuilder = (b: GraphBuilder, logits: Value, target: Value) => Value;

export interface TrainingGraphOptions {
  batch: number;
  /** Default: BCE + Dice for one class, CE + Dice for several (src/nn/losses.ts). */
  loss?: LossBuilder;
  /**
   * The optimizer fused into the graph. Without one the graph only computes gradients: it takes `acc.<param>`
   * and returns `next.acc.<param>` = acc + grad (gradient accumulation; apply with `buildUpdateGraph`).
   * Either way the graph outputs `loss` and `grad_norm_sq` (of this batch's gradient).
   */
  optimizer?: Optimizer;
  /** Also output `grad.<param>` (tests, debugging). */
  gradOutputs?: boolean;
  /**
   * Tests and debugging: called with the forward graph (loss included) before differentiation. It may add nodes
   * and inputs (every builder input becomes a graph input) and returns extra named outputs.
   */
  instrument?: (b: GraphBuilder) => ReadonlyMap<string, Value> | void;
}

/** A graph input the trainer feeds, and (for state) the output carrying its next value. */
export interface StateIO {
  input: string;
  output: string;
  shape: number[];
}

export interface TrainingGraph {
  onnx: Uint8Array;
  nodeCount: number;
  /** Trainable parameters (state_dict names): input = name, output = `next.<name>` (absent without optimizer). */
  params: StateIO[];
  /** Buffers updated by the step (BatchNorm running statistics). */
  buffers: StateIO[];
  /** Optimizer state per slot and parameter (`<slot>.<param>`), or gradient accumulators (`acc.<param>`). */
  state: StateIO[];
  /** Per-step scalar inputs (`optim.lr`, ...). */
  scalars: string[];
  /** Random masks (DropPath) to feed each step: 0 or 1/keepProb per sample. */
  randomInputs: { input: string; shape: number[]; keepProb: number }[];
  /** Image input [N, C, H, W] and target [N, K, H, W]. */
  image: string;
  target: string;
}

const fixed = (v: Value): number[] => v.shape.map((d) => (typeof d === 'number' ? d : NaN));

/** Encodes nodes of `b` into an ONNX model with the given graph inputs and named outputs (renamed through Identity). */
export function encodeGraph(b: GraphBuilder, name: string, inputs: readonly Value[], outputs: ReadonlyMap<string, Value>): Uint8Array {
  const nodes: GraphNode[] = lowerComposites(b, b.nodes);
  const outputValues: Value[] = [];
  for (const [outName, v] of outputs) {
    nodes.push({ opType: 'Identity', name: `output:${outName}`, inputs: [v.name], outputs: [outName], attrs: {} });
    outputValues.push({ ...v, name: outName });
  }
  const used = new Set(nodes.flatMap((n) => n.inputs));
  const initializers = [...b.constants.values()].filter((c) => used.has(c.value.name));
  return encodeModel({ name, nodes, inputs, outputs: outputValues, initializers });
}

/** Σ‖g‖² over gradients, a scalar. */
function squaredNorm(b: GraphBuilder, grads: readonly Value[]): Value {
  return op.Sum(b, grads.map((g) => op.ReduceSumSquare(b, g, [...g.shape.keys()], false)));
}

/** Emits the optimizer update for every parameter; returns next params and next state values by output name. */
function emitUpdates(b: GraphBuilder, optimizer: Optimizer, params: readonly Value[], grads: readonly Value[], state: StateIO[], outputs: Map<string, Value>, scalars: string[]) {
  const scalarValues: Record<string, Value> = {};
  for (const s of optimizer.scalarNames) {
    scalarValues[s] = b.input(`optim.${s}`, []);
    scalars.push(`optim.${s}`);
  }
  b.scope('optim', () =>
    params.forEach((p, i) => {
      const slots = optimizer.stateSlots.map((slot) => {
        const io = { input: `${slot}.${p.name}`, output: `next.${slot}.${p.name}`, shape: fixed(p) };
        state.push(io);
        return b.input(io.input, p.shape);
      });
      const next = optimizer.update(b, { param: p, grad: grads[i]!, state: slots, scalars: scalarValues });
      outputs.set(`next.${p.name}`, next.param);
      next.state.forEach((v, j) => outputs.set(state[state.length - slots.length + j]!.output, v));
    }),
  );
}

/**
 * Derives the training graph of `model` at a fixed batch size.
 *
 * @example
 * const g = buildTrainingGraph(model, { batch: 8, optimizer: sgd({ momentum: 0.9, weightDecay: 1e-4 }) });
 * // feeds: input, target, params, buffers, state, optim.lr, drop masks; outputs: loss, grad_norm_sq, next.*
 */
export function buildTrainingGraph(model: SegmentationModel, o: TrainingGraphOptions): TrainingGraph {
  const { builder: b, input, logits } = model.buildGraph({ training: true, batch: o.batch });
  const target = b.input('target', logits.shape);
  const loss = (o.loss ?? segmentationLoss)(b, logits, target);
  fuseComposites(b);
  const extra = o.instrument?.(b);
  const used = new Set(b.nodes.flatMap((n) => n.inputs));
  const entries = [...b.params.values()].filter((p) => used.has(p.value.name));
  const params = entries.filter((p) => p.kind === 'parameter').map((p) => p.value);
  const grads = backward(b, { value: loss }, params);
  const gradList = params.map((p) => grads.get(p.name) ?? op.Expand(b, b.constant([0], []), fixed(p)));

  const outputs = new Map<string, Value>([['loss', loss], ...(extra ?? [])]);
  const state: StateIO[] = [];
  const scalars: string[] = [];
  if (o.gradOutputs) params.forEach((p, i) => outputs.set(`grad.${p.name}`, gradList[i]!));
  outputs.set('grad_norm_sq', squaredNorm(b, gradList));
  if (o.optimizer) {
    emitUpdates(b, o.optimizer, params, gradList, state, outputs, scalars);
  } else {
    params.forEach((p, i) => {
      const io = { input: `acc.${p.name}`, output: `next.acc.${p.name}`, shape: fixed(p) };
      state.push(io);
      outputs.set(io.output, op.Add(b, b.input(io.input, p.shape), gradList[i]!));
    });
  }
  const buffers: StateIO[] = b.stateUpdates
    .filter((u) => used.has(u.buffer))
    .map((u) => {
      outputs.set(`next.${u.buffer}`, u.next);
      return { input: u.buffer, output: `next.${u.buffer}`, shape: fixed(b.value(u.buffer)) };
    });
  const stateInputs = [...b.inputs].filter((v) => v !== input && v !== target && !b.randomInputs.some((r) => r.value === v));
  const graphInputs = [input, target, ...entries.map((p) => p.value), ...b.randomInputs.map((r) => r.value), ...stateInputs];
  return {
    onnx: encodeGraph(b, `${model.name}-train`, graphInputs, outputs),
    nodeCount: b.nodes.length + outputs.size,
    params: params.map((p) => ({ input: p.name, output: o.optimizer ? `next.${p.name}` : '', shape: fixed(p) })),
    buffers,
    state,
    scalars,
    randomInputs: b.randomInputs.map((r) => ({ input: r.value.name, shape: fixed(r.value), keepProb: r.keepProb })),
    image: input.name,
    target: target.name,
  };
}

/**
 * The optimizer step alone, for gradient accumulation: inputs params, `grad.<param>` (summed gradients), state,
 * `optim.*` and `grad_scale` (1/k to average k micro-batches); outputs next params, next state and grad_norm_sq.
 */
export function buildUpdateGraph(b: GraphBuilder, shapes: ReadonlyMap<string, number[]>, optimizer: Optimizer): TrainingGraph {
  const params = [...shapes].map(([name, shape]) => b.input(name, shape));
  const scale = b.input('grad_scale', []);
  const grads = params.map((p) => op.Mul(b, b.input(`grad.${p.name}`, p.shape), scale));
  const outputs = new Map<string, Value>([['grad_norm_sq', squaredNorm(b, grads)]]);
  const state: StateIO[] = [];
  const scalars: string[] = ['grad_scale'];
  emitUpdates(b, optimizer, params, grads, state, outputs, scalars);
  return {
    onnx: encodeGraph(b, 'update', b.inputs, outputs),
    nodeCount: b.nodes.length,
    params: params.map((p) => ({ input: p.name, output: `next.${p.name}`, shape: fixed(p) })),
    buffers: [],
    state,
    scalars,
    randomInputs: [],
    image: '',
    target: '',
  };
}
