import { readSafetensorsFile, writeSafetensorsFile } from '../io/safetensors.ts';
import type { SegmentationModel } from './model.ts';
import { loadStateDict, stateDictTensors, weightsMetadata } from './state-dict.ts';

export { encodeWeights, loadStateDict, stateDictTensors, weightsMetadata } from './state-dict.ts';

/**
 * Reads weights from a .safetensors file with PyTorch state_dict names (ours, or the official code's saved with
 * `safetensors.torch.save_file`); unknown, missing or mis-shaped tensors are errors naming the tensor.
 *
 * @example
 * ```ts
 * const model = createModel('mobileutr', { size: 256 });
 * await loadWeights(model, 'best.safetensors');
 * ```
 */
export async function loadWeights(model: SegmentationModel, path: string): Promise<void> {
  loadStateDict(model, await readSafetensorsFile(path), path);
}

/** Writes the weights atomically as .safetensors that `model.load_state_dict(safetensors.torch.load_file(path))` accepts. */
export async function saveWeights(model: SegmentationModel, path: string, metadata: Record<string, string> = {}): Promise<void> {
  await writeSafetensorsFile(path, stateDictTensors(model), weightsMetadata(model, metadata));
}
