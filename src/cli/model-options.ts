import { Option, type Command } from 'commander';
import { UserError } from '../errors.ts';
import { MODELS } from '../models/registry.ts';
import { createModel, resolveOptions, type ModelOptions, type SegmentationModel } from '../models/model.ts';
import { loadWeights } from '../models/weights.ts';
import { readSafetensorsFile } from '../io/safetensors.ts';
import { intOption } from './run.ts';

export interface ModelFlags {
  model: string;
  size?: number;
  inChannels?: number;
  classes?: number;
  weights?: string;
}

/** Adds --model, --size, --in-channels, --classes to a command. */
export function addModelOptions(cmd: Command, defaults: { weights?: boolean } = {}): Command {
  cmd
    .addOption(new Option('-m, --model <name>', 'architecture').choices([...MODELS.keys()]).default('mobileutr'))
    .option('-s, --size <pixels>', 'square input size, a multiple of 16 (default 256, or from the weights file)', intOption(16))
    .option('--in-channels <n>', 'input channels (default 3, or from the weights file)', intOption(1))
    .option('--classes <n>', 'output classes (default 1, or from the weights file)', intOption(1));
  if (defaults.weights) cmd.option('-w, --weights <file>', 'weights (.safetensors with PyTorch state_dict names)');
  return cmd;
}

/**
 * Builds the model the flags describe; with --weights, options missing on the command line come from the file's
 * metadata (written by our trainer), then the weights are loaded and checked tensor by tensor. A metadata value that
 * is not a valid option is a UserError naming the file.
 */
export async function modelFromFlags(flags: ModelFlags): Promise<SegmentationModel> {
  const fromFile: ModelOptions = {};
  let model = flags.model;
  if (flags.weights) {
    const meta = (await readSafetensorsFile(flags.weights)).metadata;
    const num = (key: string, option: keyof ModelOptions) => {
      if (meta[key] === undefined) return undefined;
      const n = Number(meta[key]);
      try {
        resolveOptions({ [option]: n });
      } catch (e) {
        throw new UserError(`${flags.weights}: metadata ${key}="${String(meta[key]).slice(0, 40)}" is not usable (${(e as Error).message})`);
      }
      return n;
    };
    fromFile.size = num('size', 'size');
    fromFile.inChannels = num('in_channels', 'inChannels');
    fromFile.classes = num('classes', 'classes');
    if (meta.model && MODELS.has(meta.model) && flags.model === 'mobileutr') model = meta.model;
  }
  const m = createModel(model, {
    size: flags.size ?? fromFile.size,
    inChannels: flags.inChannels ?? fromFile.inChannels,
    classes: flags.classes ?? fromFile.classes,
  });
  if (flags.weights) await loadWeights(m, flags.weights);
  return m;
}

/**
 * Commands that read images (predict, eval, serve, train) need a model with 1 or 3 input channels: images are
 * decoded as grey (1 channel: BT.601 luma of colour images) or RGB (3 channels: grey images repeated, alpha dropped).
 * A model with any other count (2, 4, ... e.g. stacked modalities) cannot take an image file; this says so before
 * any image is read.
 */
export function requireImageChannels(model: SegmentationModel, weights?: string): void {
  const c = model.options.inChannels;
  if (c === 1 || c === 3) return;
  throw new UserError(
    `${weights ? `${weights}: model` : `--in-channels ${c}: the model`} takes ${c} input channels, but images are read as grey (1) or RGB (3); use a model with --in-channels 1 or 3`,
  );
}
