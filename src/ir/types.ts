/** A dimension: a fixed size, or a symbol (the batch dimension `N`) that ONNX Runtime binds at run time. */
export type Dim = number | string;
export type DType = 'float32' | 'int64' | 'bool';

/** A tensor flowing through the graph. */
export interface Value {
  readonly name: string;
  readonly shape: readonly Dim[];
  readonly dtype: DType;
}

export type Attribute =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'string'; value: string };

export type Attributes = Readonly<Record<string, Attribute>>;

export interface GraphNode {
  readonly opType: string;
  readonly name: string;
  /** '' marks an omitted optional input, as in ONNX. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Attributes;
}

export type TensorData = Float32Array | BigInt64Array | Uint8Array;

/** A constant tensor baked into the graph (shapes, axes, scalars). */
export interface Constant {
  readonly value: Value;
  readonly data: TensorData;
}

/** A trainable parameter or a state buffer, named like the PyTorch state_dict key. */
export interface Parameter {
  readonly value: Value;
  readonly kind: 'parameter' | 'buffer';
  /** PyTorch dtype of the buffer (BatchNorm's num_batches_tracked is int64 in PyTorch; we keep it as float32 in graphs). */
  readonly torchDtype: 'float32' | 'int64';
  data: Float32Array;
}

/** A train-mode state update: after a step, `buffer` takes the value of `next`. */
export interface StateUpdate {
  readonly buffer: string;
  readonly next: Value;
}

export const attr = {
  int: (value: number): Attribute => ({ kind: 'int', value }),
  float: (value: number): Attribute => ({ kind: 'float', value }),
  ints: (value: readonly number[]): Attribute => ({ kind: 'ints', value }),
  floats: (value: readonly number[]): Attribute => ({ kind: 'floats', value }),
  string: (value: string): Attribute => ({ kind: 'string', value }),
};

export function numel(shape: readonly Dim[]): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') throw new Error(`numel of symbolic shape [${shape.join(',')}]`);
    n *= d;
  }
  return n;
}

export function formatShape(shape: readonly Dim[]): string {
  return `[${shape.join(',')}]`;
}
