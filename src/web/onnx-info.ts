// Reads what the page needs from an .onnx file (metadata_props and the first graph input/output) with a tiny
// protobuf walker, so the page does not bundle a protobuf library just for that; weights are skipped, not parsed.

export interface OnnxSummary {
  producer: string;
  metadata: Record<string, string>;
  inputs: { name: string; dims: (number | string)[] }[];
  outputs: { name: string; dims: (number | string)[] }[];
}

export interface ModelInfo {
  /** `model` metadata (e.g. 'mobileutr') or the producer. */
  name: string;
  size: number;
  inChannels: number;
  classes: number;
  inputName: string;
  outputName: string;
  /** Where size/channels/classes came from. */
  source: 'metadata' | 'input shape';
}

export class OnnxFormatError extends Error {}

type Field = { field: number; wire: number; value: number | Uint8Array };

function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new OnnxFormatError('truncated varint');
      const b = buf[pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new OnnxFormatError('varint too long');
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 0) throw new OnnxFormatError('field number 0');
    if (wire === 0) yield { field, wire, value: varint() };
    else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      if (pos > buf.length) throw new OnnxFormatError('truncated fixed field');
    } else if (wire === 2) {
      const len = varint();
      if (pos + len > buf.length) throw new OnnxFormatError('truncated length-delimited field');
      yield { field, wire, value: buf.subarray(pos, pos + len) };
      pos += len;
    } else throw new OnnxFormatError(`unsupported wire type ${wire}`);
  }
}

const text = new TextDecoder();

function bytesOf(f: Field): Uint8Array {
  if (!(f.value instanceof Uint8Array)) throw new OnnxFormatError(`field ${f.field}: expected bytes`);
  return f.value;
}

function valueInfo(buf: Uint8Array): { name: string; dims: (number | string)[] } {
  let name = '';
  const dims: (number | string)[] = [];
  for (const f of fields(buf)) {
    if (f.field === 1 && f.wire === 2) name = text.decode(bytesOf(f));
    if (f.field !== 2 || f.wire !== 2) continue; // TypeProto
    for (const t of fields(bytesOf(f))) {
      if (t.field !== 1 || t.wire !== 2) continue; // TypeProto.tensor_type
      for (const tt of fields(bytesOf(t))) {
        if (tt.field !== 2 || tt.wire !== 2) continue; // Tensor.shape
        for (const d of fields(bytesOf(tt))) {
          if (d.field !== 1 || d.wire !== 2) continue; // TensorShapeProto.dim
          let dim: number | string = '?';
          for (const v of fields(bytesOf(d))) {
            if (v.field === 1 && v.wire === 0) dim = v.value as number;
            if (v.field === 2 && v.wire === 2) dim = text.decode(bytesOf(v));
          }
          dims.push(dim);
        }
      }
    }
  }
  return { name, dims };
}

/** Metadata, producer and graph inputs/outputs of an ONNX ModelProto; OnnxFormatError when it is not one. */
export function readOnnxSummary(bytes: Uint8Array): OnnxSummary {
  try {
    return summarise(bytes);
  } catch (e) {
    if (e instanceof OnnxFormatError) throw new OnnxFormatError(`not an ONNX file (${e.message})`);
    throw e;
  }
}

function summarise(bytes: Uint8Array): OnnxSummary {
  const summary: OnnxSummary = { producer: '', metadata: {}, inputs: [], outputs: [] };
  let graph: Uint8Array | undefined;
  let irVersion: number | undefined;
  for (const f of fields(bytes)) {
    if (f.field === 1 && f.wire === 0) irVersion = f.value as number;
    else if (f.field === 2 && f.wire === 2) summary.producer = text.decode(bytesOf(f));
    else if (f.field === 7 && f.wire === 2) graph = bytesOf(f);
    else if (f.field === 14 && f.wire === 2) {
      let key = '';
      let value = '';
      for (const e of fields(bytesOf(f))) {
        if (e.field === 1 && e.wire === 2) key = text.decode(bytesOf(e));
        if (e.field === 2 && e.wire === 2) value = text.decode(bytesOf(e));
      }
      summary.metadata[key] = value;
    }
  }
  if (irVersion === undefined || !graph) throw new OnnxFormatError('no ir_version or graph');
  const initializers = new Set<string>();
  const inputs: { name: string; dims: (number | string)[] }[] = [];
  for (const f of fields(graph)) {
    if (f.field === 5 && f.wire === 2) {
      // TensorProto.name is field 8; older exporters list initializers among the inputs too
      for (const t of fields(bytesOf(f))) if (t.field === 8 && t.wire === 2) initializers.add(text.decode(bytesOf(t)));
    } else if (f.field === 11 && f.wire === 2) inputs.push(valueInfo(bytesOf(f)));
    else if (f.field === 12 && f.wire === 2) summary.outputs.push(valueInfo(bytesOf(f)));
  }
  summary.inputs = inputs.filter((i) => !initializers.has(i.name));
  return summary;
}

function positiveInt(v: string | number | undefined): number | undefined {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * Input size, channels and classes of a segmentation model: from the `size`, `in_channels`, `classes` metadata that
 * `mobileutr export` writes, else from the input [N, C, H, W] and output [N, K, H, W] shapes.
 */
export function modelInfo(bytes: Uint8Array): ModelInfo {
  const s = readOnnxSummary(bytes);
  const input = s.inputs[0];
  const output = s.outputs[0];
  if (!input || !output) throw new OnnxFormatError('the model has no graph input or output');
  if (input.dims.length !== 4) throw new OnnxFormatError(`input "${input.name}" must be [N, C, H, W], got rank ${input.dims.length}`);
  const m = s.metadata;
  const fromMeta = { size: positiveInt(m.size), inChannels: positiveInt(m.in_channels), classes: positiveInt(m.classes) };
  const [, c, h, w] = input.dims;
  const fromShape = {
    size: positiveInt(h) !== undefined && h === w ? positiveInt(h) : undefined,
    inChannels: positiveInt(c),
    classes: positiveInt(output.dims[1]),
  };
  const size = fromMeta.size ?? fromShape.size;
  const inChannels = fromMeta.inChannels ?? fromShape.inChannels;
  const classes = fromMeta.classes ?? fromShape.classes;
  if (!size) throw new OnnxFormatError(`cannot tell the input size: no "size" metadata and input shape [${input.dims.join(', ')}] is not square and fixed`);
  if (!inChannels || inChannels > 4) throw new OnnxFormatError(`cannot use ${inChannels ?? 'unknown'} input channels (need 1-4)`);
  if (!classes || classes > 255) throw new OnnxFormatError(`cannot use ${classes ?? 'unknown'} output classes (need 1-255)`);
  const source = fromMeta.size && fromMeta.inChannels && fromMeta.classes ? 'metadata' : 'input shape';
  return { name: m.model || s.producer || 'onnx model', size, inChannels, classes, inputName: input.name, outputName: output.name, source };
}
