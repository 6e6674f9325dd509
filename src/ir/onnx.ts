import onnxProto from 'onnx-proto';
import { OPSET } from './opset.ts';
import type { Dim, DType, GraphNode, TensorData, Value } from './types.ts';

const { onnx } = onnxProto;

export { OPSET };
const IR_VERSION = 8;

/** Everything needed to write one ONNX model. */
export interface GraphSpec {
  name: string;
  nodes: readonly GraphNode[];
  inputs: readonly Value[];
  outputs: readonly Value[];
  initializers: readonly { value: Value; data: TensorData }[];
  docString?: string;
  metadata?: Record<string, string>;
}

const ELEM_TYPE: Record<DType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
};

function valueInfo(v: Value) {
  return onnx.ValueInfoProto.create({
    name: v.name,
    type: {
      tensorType: {
        elemType: ELEM_TYPE[v.dtype],
        shape: { dim: v.shape.map((d: Dim) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function tensorProto(v: Value, data: TensorData) {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return onnx.TensorProto.create({ name: v.name, dims: v.shape as number[], dataType: ELEM_TYPE[v.dtype], rawData: bytes });
}

function attributeProtos(node: GraphNode) {
  const T = onnx.AttributeProto.AttributeType;
  return Object.entries(node.attrs).map(([name, a]) => {
    switch (a.kind) {
      case 'int':
        return onnx.AttributeProto.create({ name, type: T.INT, i: a.value });
      case 'float':
        return onnx.AttributeProto.create({ name, type: T.FLOAT, f: a.value });
      case 'ints':
        return onnx.AttributeProto.create({ name, type: T.INTS, ints: [...a.value] });
      case 'floats':
        return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: [...a.value] });
      case 'string':
        return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(a.value) });
    }
  });
}

/** Serialises a graph as a standard ONNX ModelProto (default domain only). */
export function encodeModel(spec: GraphSpec): Uint8Array {
  const graph = onnx.GraphProto.create({
    name: spec.name,
    node: spec.nodes.map((n) =>
      onnx.NodeProto.create({ name: n.name, opType: n.opType, domain: '', input: [...n.inputs], output: [...n.outputs], attribute: attributeProtos(n) }),
    ),
    input: spec.inputs.map(valueInfo),
    output: spec.outputs.map(valueInfo),
    initializer: spec.initializers.map((i) => tensorProto(i.value, i.data)),
  });
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'mobileutr',
    producerVersion: '0.1.0',
    docString: spec.docString ?? '',
    graph,
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Decodes an ONNX file (for inspection and validation of foreign files). */
export function decodeModel(bytes: Uint8Array) {
  return onnx.ModelProto.decode(bytes);
}
