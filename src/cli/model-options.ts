import { Option, type Command } from 'commander';
import { MODELS } from '../models/registry.ts';
import { createModel, type ModelOptions, type SegmentationModel } from '../models/model.ts';
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
 * metadata (written by our trainer), then the weights are loaded and checked tensor by tensor.
 */
export async function modelFromFlags(flags: ModelFlags): Promise<SegmentationModel> {
  const fromFile: ModelOptions = {};
  let model = flags.model;
  if (flags.weights) {
    const meta = (await readSafetensorsFile(flags.weights)).metadata;
    const num = (k: string) => (meta[k] !== undefined && Number.isInteger(Number(meta[k])) ? Number(meta[k]) : undefined);
    fromFile.size = num('size');
    fromFile.inChannels = num('in_channels');
    fromFile.classes = num('classes');
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
