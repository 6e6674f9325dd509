// A resume checkpoint as bytes: weights + optimizer state + run position in one safetensors file. No file system here
// (the browser stores the same bytes in OPFS); checkpoint.ts writes and reads them as files, atomically.
import { UserError } from '../errors.ts';
import { encodeSafetensors, toFloat32, type SafetensorsFile, type TensorToEncode } from '../io/safetensors-format.ts';
import type { SegmentationModel } from '../models/model.ts';
import { stateDictTensors } from '../models/state-dict.ts';
import type { EpochRecord } from './curves.ts';
import type { TrainerState } from './trainer.ts';

/** Where a run stands: enough, with the weights and the optimizer state, to continue it exactly. */
export interface RunPosition {
  /** Completed epochs. */
  epoch: number;
  /** Batches already consumed in the current epoch (non-zero after an interruption mid-epoch). */
  batchInEpoch: number;
  best: { iou: number; epoch: number } | null;
  history: EpochRecord[];
  /** Per-epoch running sums of the epoch in progress, so an interrupted epoch reports the same numbers. */
  partial: { lossSum: number; gradSum: number; batches: number; skipped: number; seconds: number };
}

export const RESUME_FORMAT = 'mobileutr-resume-v1';

/** The checkpoint's tensors and metadata (model.* = state_dict, optim.* = optimizer state). */
export function resumeEntries(model: SegmentationModel, trainer: TrainerState, position: RunPosition): { tensors: [string, TensorToEncode][]; metadata: Record<string, string> } {
  const tensors: [string, TensorToEncode][] = stateDictTensors(model).map(([k, t]) => [`model.${k}`, t]);
  for (const [k, data] of trainer.tensors) tensors.push([`optim.${k}`, { shape: [data.length], data }]);
  const { tensors: _omit, ...trainerMeta } = trainer;
  return { tensors, metadata: { format: RESUME_FORMAT, trainer: JSON.stringify(trainerMeta), position: JSON.stringify(position) } };
}

export function encodeResume(model: SegmentationModel, trainer: TrainerState, position: RunPosition): Uint8Array {
  const { tensors, metadata } = resumeEntries(model, trainer, position);
  return encodeSafetensors(tensors, metadata);
}

/** Restores the weights into `model` and returns the optimizer state and position; `source` names the file in errors. */
export function decodeResume(file: SafetensorsFile, model: SegmentationModel, source: string): { trainer: TrainerState; position: RunPosition } {
  if (file.metadata.format !== RESUME_FORMAT || !file.metadata.trainer || !file.metadata.position) throw new UserError(`${source}: not a mobileutr resume checkpoint`);
  for (const name of model.weights.keys()) {
    const t = file.tensors.get(`model.${name}`);
    if (!t) throw new UserError(`${source}: missing tensor "model.${name}" (was the run's config.json edited?)`);
    model.weights.set(name, toFloat32(t));
  }
  const tensors = new Map<string, Float32Array>();
  for (const [k, t] of file.tensors) if (k.startsWith('optim.')) tensors.set(k.slice(6), toFloat32(t));
  try {
    const trainer = { ...(JSON.parse(file.metadata.trainer) as Omit<TrainerState, 'tensors'>), tensors };
    return { trainer, position: JSON.parse(file.metadata.position) as RunPosition };
  } catch {
    throw new UserError(`${source}: checkpoint metadata is not valid JSON`);
  }
}
