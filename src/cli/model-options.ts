import { Option, type Command } from 'commander';
import { UserError } from '../errors.ts';
import { MODELS } from '../models/registry.ts';
import { loadModel } from '../models/load.ts';
import { PRETRAINED, weightsPath } from '../models/pretrained.ts';
import type { SegmentationModel } from '../models/model.ts';
import { intOption } from './run.ts';
import { LGL_KERNEL_HELP, lglKernelOption } from './lgl-kernel-option.ts';

export interface ModelFlags {
  model: string;
  size?: number;
  inChannels?: number;
  classes?: number;
  weights?: string;
  lglKernel?: number;
}

/** Adds --model, --size, --in-channels, --classes, --lgl-kernel to a command. */
export function addModelOptions(cmd: Command, defaults: { weights?: boolean } = {}): Command {
  cmd
    .addOption(new Option('-m, --model <name>', 'architecture').choices([...MODELS.keys()]).default('mobileutr'))
    .option('-s, --size <pixels>', 'square input size, a multiple of 16 (32 for unext; default 256, or from the weights file)', intOption(16))
    .option('--in-channels <n>', 'input channels (default 3, or from the weights file)', intOption(1))
    .option('--classes <n>', 'output classes (default 1, or from the weights file)', intOption(1))
    .option('--lgl-kernel <n>', LGL_KERNEL_HELP, lglKernelOption);
  if (defaults.weights) cmd.option('-w, --weights <file>', `weights (.safetensors with PyTorch state_dict names), or a bundled name: ${[...PRETRAINED.keys()].join(', ')}`, weightsPath);
  return cmd;
}

/**
 * Builds the model the flags describe (loadModel): with --weights, options missing on the command line come from the
 * file's metadata; --model left at its default follows the file too.
 */
export async function modelFromFlags(flags: ModelFlags): Promise<SegmentationModel> {
  return loadModel({
    model: flags.model === 'mobileutr' ? undefined : flags.model,
    size: flags.size,
    inChannels: flags.inChannels,
    classes: flags.classes,
    weights: flags.weights,
    lglKernel: flags.lglKernel,
  });
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
