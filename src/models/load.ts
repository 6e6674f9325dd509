import { UserError } from '../errors.ts';
import { readSafetensorsFile } from '../io/safetensors.ts';
import { createModel, resolveOptions, type ModelOptions, type SegmentationModel } from './model.ts';
import { lglKernelOfTensors } from './mobileutr/lgl-kernel.ts';
import { weightsPath } from './pretrained.ts';
import { MODELS } from './registry.ts';
import { loadWeights } from './weights.ts';

/** What to build: an architecture name and options; any left out come from the weights file, else the defaults. */
export interface LoadModelOptions extends ModelOptions {
  /** Architecture (default: the one the weights file names, else 'mobileutr'). */
  model?: string;
  /** A .safetensors file with PyTorch state_dict names (ours or the official code's), or a bundled name (busi). */
  weights?: string;
}

/**
 * Builds a model and loads its weights. Options not given come from the weights file's metadata (written by our
 * trainer: model, size, in_channels, classes, MobileUtr's lgl_kernel); every tensor is checked by name and shape. Problems are `UserError`s
 * naming the file.
 *
 * @example
 * const model = await loadModel({ weights: 'runs/busi/best.safetensors' });
 * console.log(model.name, model.options.size, model.parameterCount);
 */
export async function loadModel(options: LoadModelOptions): Promise<SegmentationModel> {
  const o = options.weights ? { ...options, weights: weightsPath(options.weights) } : options;
  const fromFile: ModelOptions = {};
  let name = o.model;
  if (o.weights) {
    const file = await readSafetensorsFile(o.weights);
    const meta = file.metadata;
    const num = (key: string, option: keyof ModelOptions) => {
      if (meta[key] === undefined) return undefined;
      const n = Number(meta[key]);
      try {
        resolveOptions({ [option]: n });
      } catch (e) {
        throw new UserError(`${o.weights}: metadata ${key}="${String(meta[key]).slice(0, 40)}" is not usable (${(e as Error).message})`);
      }
      return n;
    };
    fromFile.size = num('size', 'size');
    fromFile.inChannels = num('in_channels', 'inChannels');
    fromFile.classes = num('classes', 'classes');
    if (name === undefined && meta.model && MODELS.has(meta.model)) name = meta.model;
    // MobileUtr's LGL kernel: the metadata, else (files of the official code have none) its LocalAgg kernel's shape
    if (MODELS.get(name ?? 'mobileutr')?.lglKernel) fromFile.lglKernel = num('lgl_kernel', 'lglKernel') ?? lglKernelOfTensors(file.tensors);
    if (o.lglKernel !== undefined && fromFile.lglKernel !== undefined && o.lglKernel !== fromFile.lglKernel)
      throw new UserError(`${o.weights}: the weights have LGL kernel ${fromFile.lglKernel}, not ${o.lglKernel}; leave --lgl-kernel out to use theirs`);
  }
  const model = createModel(name ?? 'mobileutr', {
    size: o.size ?? fromFile.size,
    inChannels: o.inChannels ?? fromFile.inChannels,
    classes: o.classes ?? fromFile.classes,
    lglKernel: o.lglKernel ?? fromFile.lglKernel,
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
  });
  if (o.weights) await loadWeights(model, o.weights);
  return model;
}
