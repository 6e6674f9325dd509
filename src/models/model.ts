import { UserError } from '../errors.ts';
import { GraphBuilder } from '../ir/builder.ts';
import { encodeModel, type GraphSpec } from '../ir/onnx.ts';
import type { Dim, Parameter, Value } from '../ir/types.ts';
import { Rng } from '../util/rng.ts';
import { checkLglKernel, LGL_KERNEL_DEFAULT } from './mobileutr/lgl-kernel.ts';
import { MODELS, sizeMultipleOf, type ModelDefinition } from './registry.ts';

export interface ModelOptions {
  /** Image channels the model takes (default 3; a 1-channel input is repeated to 3 like the official code). */
  inChannels?: number;
  /** Output channels (default 1: binary segmentation with a sigmoid). */
  classes?: number;
  /** Square input size, a multiple of 16 (default 256). */
  size?: number;
  /** Seed of the default PyTorch-style initialisation (default 0). */
  seed?: number;
  /**
   * MobileUtr's LGL kernel: the depthwise kernel of LocalAgg (pos_embed, attn), an odd integer 3..31 (default 9, the
   * official code). Models without LGL blocks accept only the default.
   */
  lglKernel?: number;
}

export type ResolvedModelOptions = Required<ModelOptions>;

export interface GraphOptions {
  training?: boolean;
  /** A fixed batch size, or undefined for a dynamic batch dim `N`. */
  batch?: number;
}

/** A built graph of a model: builder (nodes, parameters, taps) and its input and logits. */
export interface ModelGraph {
  builder: GraphBuilder;
  input: Value;
  logits: Value;
}

function checkInteger(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) throw new UserError(`${name} must be an integer >= ${min}, got ${value}`);
}

export function resolveOptions(o: ModelOptions): ResolvedModelOptions {
  const r = { inChannels: o.inChannels ?? 3, classes: o.classes ?? 1, size: o.size ?? 256, seed: o.seed ?? 0, lglKernel: o.lglKernel ?? LGL_KERNEL_DEFAULT };
  checkInteger('in-channels', r.inChannels, 1);
  checkInteger('classes', r.classes, 1);
  checkInteger('size', r.size, 16);
  if (r.size % 16 !== 0) throw new UserError(`size must be a multiple of 16 (the network downsamples 4 times), got ${r.size}`);
  if (r.size > 4096) throw new UserError(`size must be at most 4096, got ${r.size}`);
  checkLglKernel(r.lglKernel);
  return r;
}

export function modelDefinition(name: string): ModelDefinition {
  const def = MODELS.get(name);
  if (!def) throw new UserError(`unknown model "${name}"; available: ${[...MODELS.keys()].join(', ')}`);
  return def;
}

/**
 * A segmentation model: its definition, options and weights (a PyTorch-style state_dict).
 *
 * @example
 * const model = createModel('mobileutr', { size: 256 });
 * await writeFile('model.onnx', model.toOnnx());
 */
export class SegmentationModel {
  readonly definition: ModelDefinition;
  readonly options: ResolvedModelOptions;
  /** The eval-mode graph with a dynamic batch. */
  readonly graph: ModelGraph;
  /** state_dict: parameters and buffers by PyTorch name, in module order. */
  readonly weights: Map<string, Float32Array>;

  constructor(name: string, options: ModelOptions = {}) {
    this.definition = modelDefinition(name);
    this.options = resolveOptions(options);
    const multiple = sizeMultipleOf(this.definition);
    if (this.options.size % multiple !== 0) throw new UserError(`${name} needs a size that is a multiple of ${multiple}, got ${this.options.size}`);
    if (!this.definition.lglKernel && this.options.lglKernel !== LGL_KERNEL_DEFAULT)
      throw new UserError(`lgl-kernel applies to MobileUtr (mobileutr, mobileutr-l) only; ${name} has no LGL blocks`);
    this.graph = this.buildGraph({});
    this.weights = new Map([...this.graph.builder.params].map(([k, p]) => [k, p.data]));
  }

  get name(): string {
    return this.definition.name;
  }

  /** Parameters and buffers with their shapes, in state_dict order. */
  get entries(): Parameter[] {
    return [...this.graph.builder.params.values()];
  }

  /** Number of trainable parameters (what papers report). */
  get parameterCount(): number {
    return this.entries.filter((p) => p.kind === 'parameter').reduce((n, p) => n + p.data.length, 0);
  }

  /** Builds a fresh graph of this architecture (eval or train mode, dynamic or fixed batch). Weights are not bound. */
  buildGraph(g: GraphOptions): ModelGraph {
    const { inChannels, size, classes, seed } = this.options;
    const builder = new GraphBuilder({ training: g.training ?? false, rng: new Rng(seed) });
    const batch: Dim = g.batch ?? 'N';
    const input = builder.input('input', [batch, inChannels, size, size]);
    const logits = this.definition.build(builder, input, classes, this.options);
    return { builder, input, logits };
  }

  /**
   * The eval graph as an ONNX model: input `input` [N,C,H,W] float32, output `logits`; `taps` adds module outputs;
   * `metadata` adds metadata_props entries (e.g. a volume model's `volume`).
   */
  toOnnx(o: { taps?: boolean; metadata?: Record<string, string> } = {}): Uint8Array {
    const { builder, input, logits } = this.graph;
    const outputs: Value[] = [{ ...logits, name: 'logits' }];
    const nodes = [...builder.nodes, { opType: 'Identity', name: 'logits_identity', inputs: [logits.name], outputs: ['logits'], attrs: {} }];
    if (o.taps) outputs.push(...builder.taps.values());
    const spec = this.graphSpec(nodes, [input], outputs);
    return encodeModel({ ...spec, metadata: { ...spec.metadata, ...o.metadata } });
  }

  private graphSpec(nodes: GraphSpec['nodes'], inputs: Value[], outputs: Value[]): GraphSpec {
    const { builder } = this.graph;
    const used = new Set(nodes.flatMap((n) => n.inputs));
    const weights = [...builder.params.values()]
      .filter((p) => used.has(p.value.name))
      .map((p) => ({ value: p.value, data: this.weights.get(p.value.name)! }));
    return {
      name: this.name,
      nodes,
      inputs,
      outputs,
      initializers: [...weights, ...[...builder.constants.values()].map((c) => ({ value: c.value, data: c.data }))],
      docString: `${this.definition.description}; exported by mobileutr`,
      metadata: {
        model: this.name,
        in_channels: String(this.options.inChannels),
        classes: String(this.options.classes),
        size: String(this.options.size),
        ...(this.definition.lglKernel ? { lgl_kernel: String(this.options.lglKernel) } : {}),
      },
    };
  }
}

/** Builds a model with PyTorch's default initialisation (seeded). */
export function createModel(name: string, options: ModelOptions = {}): SegmentationModel {
  return new SegmentationModel(name, options);
}
