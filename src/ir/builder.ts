import { inferShapes } from './shapes.ts';
import type { Attributes, Constant, DType, Dim, GraphNode, Parameter, StateUpdate, TensorData, Value } from './types.ts';
import { formatShape, numel } from './types.ts';
import type { Rng } from '../util/rng.ts';

export interface BuilderOptions {
  /** Train mode: BatchNorm uses batch statistics and records running-stat updates; DropPath is active. */
  training?: boolean;
  /** Source of randomness for default parameter initialisation. */
  rng: Rng;
}

/**
 * Records ONNX nodes with shape inference and PyTorch-style hierarchical parameter names.
 * Model code calls `scope('layer1', ...)` the way PyTorch nests modules, so parameter names come out as state_dict keys.
 */
export class GraphBuilder {
  readonly training: boolean;
  readonly rng: Rng;
  readonly nodes: GraphNode[] = [];
  readonly inputs: Value[] = [];
  readonly constants = new Map<string, Constant>();
  readonly params = new Map<string, Parameter>();
  readonly stateUpdates: StateUpdate[] = [];
  /** Named intermediate values (module outputs) that can be exported for debugging and parity checks. */
  readonly taps = new Map<string, Value>();
  /** Per-step random inputs (DropPath masks) that a trainer must feed. */
  readonly randomInputs: { value: Value; keepProb: number }[] = [];
  private readonly values = new Map<string, Value>();
  private readonly scopePath: string[] = [];
  private readonly constantKeys = new Map<string, Value>();
  private counter = 0;

  constructor(options: BuilderOptions) {
    this.training = options.training ?? false;
    this.rng = options.rng;
  }

  /** Runs `fn` inside a named sub-module: names created inside are prefixed with `name.`. */
  scope<T>(name: string | number, fn: () => T): T {
    this.scopePath.push(String(name));
    try {
      return fn();
    } finally {
      this.scopePath.pop();
    }
  }

  /** The state_dict-style name of `local` in the current scope. */
  qualified(local: string): string {
    return [...this.scopePath, local].join('.');
  }

  /** The current module path, e.g. `patch_embeddings.layer1`. */
  get modulePath(): string {
    return this.scopePath.join('.');
  }

  value(name: string): Value {
    const v = this.values.get(name);
    if (!v) throw new Error(`unknown value ${name}`);
    return v;
  }

  input(name: string, shape: readonly Dim[], dtype: DType = 'float32'): Value {
    const v = this.define({ name, shape, dtype });
    this.inputs.push(v);
    return v;
  }

  /** A trainable parameter with PyTorch's default initialisation. */
  parameter(local: string, shape: readonly number[], init: (rng: Rng, size: number) => Float32Array): Value {
    const name = this.qualified(local);
    const value = this.define({ name, shape, dtype: 'float32' });
    this.params.set(name, { value, kind: 'parameter', torchDtype: 'float32', data: init(this.rng, numel(shape)) });
    return value;
  }

  /** A non-trainable state tensor (BatchNorm running statistics). */
  buffer(local: string, shape: readonly number[], data: Float32Array, torchDtype: 'float32' | 'int64' = 'float32'): Value {
    const name = this.qualified(local);
    const value = this.define({ name, shape, dtype: 'float32' });
    this.params.set(name, { value, kind: 'buffer', torchDtype, data });
    return value;
  }

  /**
   * A float32 constant; identical small constants are shared unless `shared` is false (an input that ONNX Runtime
   * writes into, such as train-mode BatchNormalization's running statistics, must have its own buffer).
   */
  constant(data: Float32Array | readonly number[], shape: readonly number[] = [data.length], o: { shared?: boolean } = {}): Value {
    return this.constantOf(data instanceof Float32Array ? data : Float32Array.from(data), shape, 'float32', o.shared ?? true);
  }

  /** An int64 constant (shapes, axes, indices). */
  int64(data: readonly number[], shape: readonly number[] = [data.length]): Value {
    return this.constantOf(BigInt64Array.from(data, (v) => BigInt(v)), shape, 'int64');
  }

  private constantOf(data: TensorData, shape: readonly number[], dtype: DType, shared = true): Value {
    const key = shared && data.length <= 64 ? `${dtype}:${formatShape(shape)}:${Array.from(data as ArrayLike<number | bigint>).join(',')}` : undefined;
    const existing = key ? this.constantKeys.get(key) : undefined;
    if (existing) return existing;
    const value = this.define({ name: this.fresh('const'), shape, dtype });
    this.constants.set(value.name, { value, data });
    if (key) this.constantKeys.set(key, value);
    return value;
  }

  /** Emits one ONNX node and returns its outputs with inferred shapes. `null` marks an omitted optional input. */
  op(opType: string, inputs: readonly (Value | null)[], attrs: Attributes = {}, numOutputs = 1): Value[] {
    const present = inputs.map((v) => v ?? undefined);
    let inferred;
    try {
      inferred = inferShapes(opType, {
        inputs: present,
        attrs,
        numOutputs,
        constantOf: (i) => {
          const v = present[i];
          return v ? this.constants.get(v.name)?.data : undefined;
        },
      });
    } catch (e) {
      const shapes = present.map((v) => (v ? formatShape(v.shape) : '-')).join(', ');
      throw new Error(`${opType} in ${this.modulePath || '<root>'} with inputs ${shapes}: ${(e as Error).message}`);
    }
    const base = this.fresh(this.qualified(opType));
    const outputs = inferred.map((o, i) => this.define({ name: inferred.length === 1 ? base : `${base}:${i}`, shape: o.shape, dtype: o.dtype }));
    this.nodes.push({ opType, name: base, inputs: inputs.map((v) => v?.name ?? ''), outputs: outputs.map((o) => o.name), attrs });
    return outputs;
  }

  /** Like `op` for single-output nodes. */
  op1(opType: string, inputs: readonly (Value | null)[], attrs: Attributes = {}): Value {
    return this.op(opType, inputs, attrs, 1)[0]!;
  }

  /** Runs `fn` as a named sub-module and records its output as a tap under the module's full path. */
  module(name: string | number, fn: () => Value): Value {
    return this.scope(name, () => {
      const out = fn();
      this.taps.set(this.modulePath, out);
      return out;
    });
  }

  /** A fresh float input holding a per-step random mask (DropPath), fed by the trainer. */
  randomMask(shape: readonly Dim[], keepProb: number): Value {
    const value = this.input(this.fresh(this.qualified('drop_mask')), shape);
    this.randomInputs.push({ value, keepProb });
    return value;
  }

  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  private define(v: Value): Value {
    if (this.values.has(v.name)) throw new Error(`duplicate value name ${v.name}`);
    this.values.set(v.name, v);
    return v;
  }
}
