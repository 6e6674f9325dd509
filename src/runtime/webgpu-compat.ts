// What onnxruntime-web's WebGPU execution provider cannot run in our training graphs, rewritten into ops it can:
// - BatchNormalization with training_mode=1: the WebGPU kernel refuses it ("trainingMode is not supported yet", ORT
//   Web 1.30); it becomes ReduceMean / Sub / Mul / Add / Sqrt / Div with the same outputs: y, the batch mean and the
//   biased batch variance (our graphs use momentum 0, see batchnorm-train.ts);
// - Sum of several inputs (the gradient accumulations): no WebGPU kernel, so ORT would copy each to the CPU; it
//   becomes a chain of Adds;
// - MaxPool's gradient, MaxPool with its Indices output and MaxUnpool: the WebGPU MaxPool kernel takes the node but
//   leaves Indices unset (ORT Web 1.30: "Trying to get a Tensor, but got: (null)"); the pair becomes the same routing
//   to each window's first maximum as SpaceToDepth, ArgMax (the first max on ties), Equal, Where and DepthToSpace.
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
const intsAttr = (n: NodeProto, name: string) => (n.attribute?.find((x) => x.name === name)?.ints ?? []).map(Number);
const hasIndices = (n: NodeProto) => n.opType === 'MaxPool' && (n.output?.length ?? 0) > 1 && Boolean(n.output![1]);

type TensorProto = onnxProto.onnx.ITensorProto;
const int64Tensor = (name: string, values: number[], dims = [values.length]) =>
  onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.INT64, int64Data: values });
/** The values of an int64 initializer (raw little-endian bytes or int64Data). */
function int64Values(t: TensorProto | undefined, what: string): number[] {
  if (!t) throw new Error(`${what}: not a constant of the graph`);
  if (t.rawData?.length) {
    const raw = t.rawData;
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return Array.from({ length: raw.byteLength / 8 }, (_, i) => Number(view.getBigInt64(i * 8, true)));
  }
  return (t.int64Data ?? []).map(Number);
}

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
  if (!nodes.some((n) => (n.opType === 'BatchNormalization' && intAttr(n, 'training_mode', 0) === 1) || (n.opType === 'Sum' && (n.input?.length ?? 0) > 1) || hasIndices(n))) return bytes;
  const poolsByIndices = new Map(nodes.filter(hasIndices).map((n) => [n.output![1]!, n]));
  const consumed = new Set(nodes.flatMap((n) => n.input ?? []));
  for (const o of graph.output ?? []) consumed.add(o.name!);
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
    if (hasIndices(n)) {
      // the values output, where something reads it, from a plain MaxPool; the indices are rewritten at MaxUnpool
      if (n.output![0] && consumed.has(n.output![0])) out.push(onnx.NodeProto.create({ ...n, output: [n.output![0]] }));
      continue;
    }
    const pool = n.opType === 'MaxUnpool' ? poolsByIndices.get(n.input![1]!) : undefined;
    if (pool) {
      out.push(...firstMaxRouting(graph, pool, n, k++));
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

/** MaxUnpool(dy, Indices of MaxPool(x)) as SpaceToDepth / ArgMax / Equal / Where / DepthToSpace (kernel = stride). */
function firstMaxRouting(graph: onnxProto.onnx.IGraphProto, pool: NodeProto, unpool: NodeProto, k: number): NodeProto[] {
  const kernel = intsAttr(pool, 'kernel_shape');
  const strides = intsAttr(pool, 'strides');
  const shapeName = unpool.input![2]!;
  const [n, c, h, w] = int64Values(graph.initializer?.find((t) => t.name === shapeName), `${unpool.name} output_shape`);
  const s = kernel[0]!;
  if (kernel.length !== 2 || kernel[1] !== s || strides.some((v) => v !== s) || h! % s || w! % s)
    throw new Error(`${pool.name}: MaxPool gradient on WebGPU needs a square kernel = stride that divides ${h}x${w}`);
  const p = `webgpu_compat.maxpool${k}`;
  const [ho, wo] = [h! / s, w! / s];
  graph.initializer!.push(
    int64Tensor(`${p}.windows`, [n!, s * s, c!, ho, wo]),
    int64Tensor(`${p}.dy_shape`, [n!, 1, c!, ho, wo]),
    int64Tensor(`${p}.routed_shape`, [n!, s * s * c!, ho, wo]),
    int64Tensor(`${p}.iota`, [...Array(s * s).keys()], [1, s * s, 1, 1, 1]),
    onnx.TensorProto.create({ name: `${p}.zero`, dims: [], dataType: onnx.TensorProto.DataType.FLOAT, floatData: [0] }),
  );
  const int = (name: string, i: number) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i });
  const node = (opType: string, input: string[], output: string, attribute: onnxProto.onnx.IAttributeProto[] = []) =>
    onnx.NodeProto.create({ name: `${p}.${output.split('.').pop()}`, opType, domain: '', input, output: [output], attribute });
  return [
    node('SpaceToDepth', [pool.input![0]!], `${p}.blocks`, [int('blocksize', s)]),
    node('Reshape', [`${p}.blocks`, `${p}.windows`], `${p}.windowed`),
    node('ArgMax', [`${p}.windowed`], `${p}.first`, [int('axis', 1), int('keepdims', 1)]),
    node('Equal', [`${p}.first`, `${p}.iota`], `${p}.onehot`),
    node('Reshape', [unpool.input![0]!, `${p}.dy_shape`], `${p}.dy`),
    node('Where', [`${p}.onehot`, `${p}.dy`, `${p}.zero`], `${p}.routed`),
    node('Reshape', [`${p}.routed`, `${p}.routed_shape`], `${p}.depth`),
    node('DepthToSpace', [`${p}.depth`], unpool.output![0]!, [int('blocksize', s)]),
  ];
}
