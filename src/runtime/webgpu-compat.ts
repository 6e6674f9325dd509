// What onnxruntime-web's WebGPU execution provider cannot run in our training graphs, rewritten into ops it can:
// - BatchNormalization with training_mode=1: the WebGPU kernel refuses it ("trainingMode is not supported yet", ORT
//   Web 1.30); it becomes ReduceMean / Sub / Mul / Add / Sqrt / Div with the same outputs: y, the batch mean and the
//   biased batch variance (our graphs use momentum 0, see batchnorm-train.ts);
// - Sum of several inputs (the gradient accumulations): no WebGPU kernel, so ORT would copy each to the CPU; it
//   becomes a chain of Adds.
// What still has no WebGPU kernel (Softplus and Sign of the loss, SpaceToDepth, Identity) is placed on the CPU (wasm)
// by ONNX Runtime itself (README, "WebGPU in the browser").
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

type NodeProto = onnxProto.onnx.INodeProto;

const intAttr = (n: NodeProto, name: string, fallback: number) => {
  const a = n.attribute?.find((x) => x.name === name);
  return a ? Number(a.i) : fallback;
};
const floatAttr = (n: NodeProto, name: string, fallback: number) => n.attribute?.find((x) => x.name === name)?.f ?? fallback;

/** True when the model has a train-mode BatchNormalization (cheap: a scan of the decoded nodes). */
export function hasTrainingBatchNorm(bytes: Uint8Array): boolean {
  return onnx.ModelProto.decode(bytes).graph?.node?.some((n) => n.opType === 'BatchNormalization' && intAttr(n, 'training_mode', 0) === 1) ?? false;
}

/**
 * Rewrites every train-mode BatchNormalization (4-D input, momentum 0) into elementwise ops and reductions, and every
 * multi-input Sum into Adds, which the WebGPU provider runs; other models come back unchanged.
 */
export function decomposeTrainingBatchNorm(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const nodes = graph.node ?? [];
  if (!nodes.some((n) => (n.opType === 'BatchNormalization' && intAttr(n, 'training_mode', 0) === 1) || (n.opType === 'Sum' && (n.input?.length ?? 0) > 1))) return bytes;
  const axesName = 'webgpu_compat.axes_0_2_3';
  graph.initializer = [...(graph.initializer ?? []), onnx.TensorProto.create({ name: axesName, dims: [3], dataType: onnx.TensorProto.DataType.INT64, int64Data: [0, 2, 3] })];
  const out: NodeProto[] = [];
  let k = 0;
  for (const n of nodes) {
    if (n.opType === 'Sum' && (n.input?.length ?? 0) > 1) {
      // no WebGPU kernel for Sum (ORT Web 1.30): a chain of Adds keeps the gradient accumulations on the GPU
      const inputs = n.input as string[];
      let acc = inputs[0]!;
      inputs.slice(1).forEach((x, i) => {
        const output = i === inputs.length - 2 ? n.output![0]! : `${n.name}.webgpu_sum${i}`;
        out.push(onnx.NodeProto.create({ name: `${n.name}.webgpu_add${i}`, opType: 'Add', domain: '', input: [acc, x], output: [output] }));
        acc = output;
      });
      continue;
    }
    if (n.opType !== 'BatchNormalization' || intAttr(n, 'training_mode', 0) !== 1) {
      out.push(n);
      continue;
    }
    if (floatAttr(n, 'momentum', 0.9) !== 0) throw new Error(`${n.name}: train-mode BatchNormalization with momentum ≠ 0 is not rewritten for WebGPU`);
    const eps = floatAttr(n, 'epsilon', 1e-5);
    const [x, scale, bias] = n.input as string[];
    const [y, meanOut, varOut] = n.output as string[];
    const p = `webgpu_compat.bn${k++}`;
    const node = (opType: string, inputs: string[], output: string, attribute: Record<string, number | number[]> = {}) =>
      out.push(
        onnx.NodeProto.create({
          name: `${p}.${opType}_${out.length}`,
          opType,
          domain: '',
          input: inputs,
          output: [output],
          attribute: Object.entries(attribute).map(([name, v]) =>
            Array.isArray(v)
              ? onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: v })
              : onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: v }),
          ),
        }),
      );
    const epsName = `${p}.eps`;
    graph.initializer.push(onnx.TensorProto.create({ name: epsName, dims: [], dataType: onnx.TensorProto.DataType.FLOAT, floatData: [eps] }));
    node('ReduceMean', [x!], `${p}.mean`, { axes: [0, 2, 3], keepdims: 1 });
    node('Sub', [x!, `${p}.mean`], `${p}.centred`);
    node('Mul', [`${p}.centred`, `${p}.centred`], `${p}.squares`);
    node('ReduceMean', [`${p}.squares`], `${p}.var`, { axes: [0, 2, 3], keepdims: 1 });
    node('Add', [`${p}.var`, epsName], `${p}.var_eps`);
    node('Sqrt', [`${p}.var_eps`], `${p}.std`);
    node('Unsqueeze', [scale!, axesName], `${p}.scale`);
    node('Unsqueeze', [bias!, axesName], `${p}.bias`);
    node('Div', [`${p}.scale`, `${p}.std`], `${p}.gain`);
    node('Mul', [`${p}.centred`, `${p}.gain`], `${p}.scaled`);
    node('Add', [`${p}.scaled`, `${p}.bias`], y!);
    if (meanOut) node('Squeeze', [`${p}.mean`, axesName], meanOut);
    if (varOut) node('Squeeze', [`${p}.var`, axesName], varOut);
  }
  graph.node = out;
  return onnx.ModelProto.encode(model).finish();
}
