import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { readSafetensorsFile, toFloat32, writeSafetensorsFile, type TensorToEncode } from '../io/safetensors.ts';
import type { SegmentationModel } from '../models/model.ts';
import { stateDictTensors } from '../models/weights.ts';
import type { TrainerState } from './trainer.ts';
import type { EpochRecord } from './curves.ts';

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

export const RESUME_FILE = 'resume.safetensors';

/**
 * Writes weights + optimizer state + position as one file, atomically (temp file + rename): a crash at any
 * moment leaves either the previous or the new checkpoint, never a mix.
 */
export async function saveResume(dir: string, model: SegmentationModel, trainer: TrainerState, position: RunPosition): Promise<void> {
  const tensors: [string, TensorToEncode][] = stateDictTensors(model).map(([k, t]) => [`model.${k}`, t]);
  for (const [k, data] of trainer.tensors) tensors.push([`optim.${k}`, { shape: [data.length], data }]);
  const { tensors: _omit, ...trainerMeta } = trainer;
  await writeSafetensorsFile(join(dir, RESUME_FILE), tensors, {
    format: 'mobileutr-resume-v1',
    trainer: JSON.stringify(trainerMeta),
    position: JSON.stringify(position),
  });
}

export async function loadResume(dir: string, model: SegmentationModel): Promise<{ trainer: TrainerState; position: RunPosition }> {
  const path = join(dir, RESUME_FILE);
  if (!existsSync(path)) throw new UserError(`${path}: no checkpoint to resume from (the run saved none yet)`);
  const file = await readSafetensorsFile(path);
  if (file.metadata.format !== 'mobileutr-resume-v1' || !file.metadata.trainer || !file.metadata.position)
    throw new UserError(`${path}: not a mobileutr resume checkpoint`);
  for (const name of model.weights.keys()) {
    const t = file.tensors.get(`model.${name}`);
    if (!t) throw new UserError(`${path}: missing tensor "model.${name}" (was the run's config.json edited?)`);
    model.weights.set(name, toFloat32(t));
  }
  const tensors = new Map<string, Float32Array>();
  for (const [k, t] of file.tensors) if (k.startsWith('optim.')) tensors.set(k.slice(6), toFloat32(t));
  try {
    const trainer = { ...(JSON.parse(file.metadata.trainer) as Omit<TrainerState, 'tensors'>), tensors };
    return { trainer, position: JSON.parse(file.metadata.position) as RunPosition };
  } catch {
    throw new UserError(`${path}: checkpoint metadata is not valid JSON`);
  }
}
