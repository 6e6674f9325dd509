import { appendFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeSplitFile } from '../data/split.ts';
import type { SegmentationModel } from '../models/model.ts';
import type { SessionOptions } from '../runtime/types.ts';
import { weightsPath } from '../models/pretrained.ts';
import { loadWeights, saveWeights } from '../models/weights.ts';
import { Segmenter } from '../pipeline/segmenter.ts';
import { NodeSession } from '../runtime/session.ts';
import { loadResume, saveResume } from './checkpoint.ts';
import type { TrainConfig } from './config.ts';
import { writeCurvesPng, type EpochRecord } from './curves.ts';
import { trainWith, type RunStore, type TrainRunOptions, type TrainRunResult } from './run-core.ts';
import { trainingSource } from './sources.ts';

export { epochPlan, trainWith, type RunDeps, type RunStore, type TrainEvents, type TrainRunOptions, type TrainRunResult, type Validator } from './run-core.ts';

const CSV_FIELDS: (keyof EpochRecord)[] = ['epoch', 'step', 'lr', 'train_loss', 'grad_norm', 'val_iou', 'val_dice', 'val_f1', 'images_per_s', 'seconds', 'skipped_batches'];

/** A run folder: config.json, train.txt/val.txt, best/last/resume .safetensors, metrics.jsonl/csv, curves.png. */
export function folderStore(runDir: string): RunStore {
  return {
    name: runDir,
    resumeHint: `--resume ${runDir}`,
    async start(config, train, val) {
      await mkdir(runDir, { recursive: true });
      await writeFile(join(runDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
      await writeSplitFile(join(runDir, 'train.txt'), train);
      await writeSplitFile(join(runDir, 'val.txt'), val);
      await writeFile(join(runDir, 'metrics.jsonl'), '');
      await writeFile(join(runDir, 'metrics.csv'), `${CSV_FIELDS.join(',')}\n`);
    },
    async loadResume(model: SegmentationModel) {
      // temporary files of a save that a crash (kill -9, power loss) interrupted: the renamed files are the truth
      for (const f of await readdir(runDir)) if (/\.tmp-\d+-/.test(f)) await rm(join(runDir, f), { force: true });
      return loadResume(runDir, model);
    },
    saveResume: (model, trainer, position) => saveResume(runDir, model, trainer, position),
    saveWeights: (name, model, metadata) => saveWeights(model, join(runDir, `${name}.safetensors`), metadata),
    async epochDone(record: EpochRecord, history) {
      await appendFile(join(runDir, 'metrics.jsonl'), `${JSON.stringify(record)}\n`);
      await appendFile(join(runDir, 'metrics.csv'), `${CSV_FIELDS.map((f) => record[f] ?? '').join(',')}\n`);
      await writeCurvesPng(join(runDir, 'curves.png'), history);
    },
  };
}

/** A run on Node: TrainRunOptions, and where onnxruntime-node runs it. */
export interface NodeTrainRunOptions extends TrainRunOptions {
  /**
   * Where training and validation run (default 'cpu'; 'webgpu': onnxruntime-node's WebGPU execution provider, see
   * SessionOptions.device). Not part of the run's config: a run may be resumed on another device.
   */
  device?: 'cpu' | 'webgpu';
}

/**
 * Trains a model in `runDir` with `config` (or resumes the run there); see TrainConfig for the protocol. Writes
 * best/last weights, an atomic resume checkpoint, metrics.csv and curves.png; `signal` stops it cleanly. Exported
 * from the package as `train`.
 *
 * @example
 * ```ts
 * const ctrl = new AbortController();
 * process.once('SIGINT', () => ctrl.abort());
 * const config = { ...PAPER_DEFAULTS, data: 'my-data', classes: 1 };
 * const run = await train('runs/exp1', config, { signal: ctrl.signal });
 * if (run.status === 'interrupted') await train('runs/exp1', config, { resume: true }); // continues exactly
 * ```
 */
export async function runTraining(runDir: string, config: TrainConfig, o: NodeTrainRunOptions = {}): Promise<TrainRunResult> {
  sharp.concurrency(Math.max(1, config.workers));
  const source = await trainingSource(config, runDir, o.resume === true);
  const device = o.device ? { device: o.device } : {};
  return trainWith(
    config,
    {
      source,
      store: folderStore(runDir),
      validator: (model) => Segmenter.create(model, { threads: config.threads, ...device }),
      ...(config.init ? { initialWeights: (model: SegmentationModel) => loadWeights(model, weightsPath(config.init!)) } : {}),
      ...(o.device ? { backend: (bytes: Uint8Array, options: SessionOptions) => NodeSession.create(bytes, { ...options, ...device }) } : {}),
    },
    o,
  );
}
