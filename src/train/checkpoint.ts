import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { readSafetensorsFile, writeSafetensorsFile } from '../io/safetensors.ts';
import type { SegmentationModel } from '../models/model.ts';
import { decodeResume, resumeEntries, type RunPosition } from './resume-format.ts';
import type { TrainerState } from './trainer.ts';

export type { RunPosition } from './resume-format.ts';

export const RESUME_FILE = 'resume.safetensors';

/**
 * Writes weights + optimizer state + position as one file, atomically (temp file + rename): a crash at any
 * moment leaves either the previous or the new checkpoint, never a mix.
 */
export async function saveResume(dir: string, model: SegmentationModel, trainer: TrainerState, position: RunPosition): Promise<void> {
  const { tensors, metadata } = resumeEntries(model, trainer, position);
  await writeSafetensorsFile(join(dir, RESUME_FILE), tensors, metadata);
}

export async function loadResume(dir: string, model: SegmentationModel): Promise<{ trainer: TrainerState; position: RunPosition }> {
  const path = join(dir, RESUME_FILE);
  if (!existsSync(path)) throw new UserError(`${path}: no checkpoint to resume from (the run saved none yet)`);
  return decodeResume(await readSafetensorsFile(path), model, path);
}
