// The state_dict <-> model mapping, on bytes and parsed files only (shared by Node and the browser; weights.ts adds files).
import { UserError } from '../errors.ts';
import { formatShape } from '../ir/types.ts';
import { encodeSafetensors, toFloat32, type SafetensorsFile, type TensorToEncode } from '../io/safetensors-format.ts';
import type { SegmentationModel } from './model.ts';

/** A tensor name as it goes into a one-line message (a hostile file can hold megabyte-long names). */
const clip = (name: string) => (name.length > 120 ? `${name.slice(0, 117)}...` : name);

/**
 * Copies a PyTorch-style state_dict into the model. Every tensor must be known, present and of the right shape;
 * any problem is a UserError naming the tensor. Any numeric dtype is accepted (num_batches_tracked is int64 in PyTorch).
 */
export function loadStateDict(model: SegmentationModel, file: SafetensorsFile, source: string): void {
  const expected = new Map(model.entries.map((p) => [p.value.name, p]));
  const unknown = [...file.tensors.keys()].filter((name) => !expected.has(name));
  if (unknown.length > 0)
    throw new UserError(`${source}: unknown tensor "${clip(unknown[0]!)}"${unknown.length > 1 ? ` (and ${unknown.length - 1} more)` : ''} for model ${model.name}`);
  const missing = [...expected.keys()].filter((name) => !file.tensors.has(name));
  if (missing.length > 0)
    throw new UserError(`${source}: missing tensor "${missing[0]}"${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''} for model ${model.name}`);
  const loaded = new Map<string, Float32Array>();
  for (const [name, p] of expected) {
    const t = file.tensors.get(name)!;
    if (formatShape(t.shape) !== formatShape(p.value.shape))
      throw new UserError(`${source}: tensor "${name}" has shape ${formatShape(t.shape)}, model ${model.name} expects ${formatShape(p.value.shape)}`);
    const data = toFloat32(t);
    if (p.kind === 'parameter' && data.some((v) => !Number.isFinite(v))) throw new UserError(`${source}: tensor "${name}" contains NaN or infinite values`);
    loaded.set(name, data);
  }
  for (const [name, data] of loaded) model.weights.set(name, data);
}

/** The state_dict as safetensors entries: float32 tensors, int64 for PyTorch's integer buffers. */
export function stateDictTensors(model: SegmentationModel): [string, TensorToEncode][] {
  return model.entries.map((p) => {
    const data = model.weights.get(p.value.name)!;
    const shape = p.value.shape as number[];
    return [p.value.name, p.torchDtype === 'int64' ? { dtype: 'I64', shape, data: BigInt64Array.from(data, (v) => BigInt(Math.round(v))) } : { shape, data }];
  });
}

/** The metadata our weights files carry: format 'pt' (what safetensors.torch expects), model and options (MobileUtr: lgl_kernel). */
export function weightsMetadata(model: SegmentationModel, metadata: Record<string, string> = {}): Record<string, string> {
  const o = model.options;
  const lgl: Record<string, string> = model.definition.lglKernel ? { lgl_kernel: String(o.lglKernel) } : {};
  return { format: 'pt', model: model.name, in_channels: String(o.inChannels), classes: String(o.classes), size: String(o.size), ...lgl, ...metadata };
}

/** The weights as .safetensors bytes (see saveWeights); used where there is no file system (the browser). */
export function encodeWeights(model: SegmentationModel, metadata: Record<string, string> = {}): Uint8Array {
  return encodeSafetensors(stateDictTensors(model), weightsMetadata(model, metadata));
}
