// Messages between the training page and its Web Worker (train-worker.ts).
import type { Finding } from '../../src/data/check.ts';
import type { WebRuntimeInfo } from '../../src/runtime/web.ts';
import type { EpochRecord } from '../../src/train/curves.ts';
import type { BrowserTrainSettings } from '../../src/web/train/run.ts';
import type { DatasetFile } from '../../src/web/train/dataset.ts';

export type Backend = 'auto' | 'wasm' | 'webgpu';

export type ToWorker =
  | { type: 'check'; files: DatasetFile[]; datasetJson?: string; size: number }
  | { type: 'start'; name: string; files: DatasetFile[]; datasetJson?: string; settings: BrowserTrainSettings; backend: Backend; wasmPaths: string; checkpointEvery: number; maxSteps?: number }
  | { type: 'resume'; name: string; backend: Backend; wasmPaths: string; checkpointEvery: number; maxSteps?: number }
  | { type: 'pause' }
  | { type: 'evaluate'; name: string; backend: Backend; wasmPaths: string }
  | { type: 'file'; name: string; file: 'best.safetensors' | 'last.safetensors' | 'model.onnx' | 'metrics.jsonl' | 'config.json' }
  | { type: 'runs' };

export interface CheckSummary {
  layout: string;
  root: string;
  images: number;
  classes: number;
  classNames: string[];
  usable: number;
  findings: Finding[];
  counts: Record<'error' | 'warning' | 'info', number>;
  train: number;
  val: number;
}

export interface Overlay {
  id: string;
  iou: number;
  dice: number;
  width: number;
  height: number;
  /** RGBA pixels of the image at the model size with prediction and truth drawn on it. */
  rgba: Uint8ClampedArray;
}

export type FromWorker =
  | { type: 'checked'; summary: CheckSummary }
  | { type: 'copying'; done: number; total: number }
  | { type: 'runtime'; info: WebRuntimeInfo }
  | { type: 'step'; epoch: number; epochs: number; batch: number; batches: number; step: number; loss: number; lr: number; imagesPerS: number; etaS: number }
  | { type: 'epoch'; record: EpochRecord; best: { iou: number; epoch: number } | null }
  | { type: 'log'; line: string }
  | { type: 'stopped'; status: 'finished' | 'interrupted'; step: number; epoch: number; best: { iou: number; epoch: number } | null }
  | { type: 'evaluated'; iou: number; dice: number; f1: number; n: number; worst: Overlay[]; best: Overlay[] }
  | { type: 'file'; file: string; bytes: Uint8Array }
  | { type: 'runs'; runs: { name: string; epoch: number; epochs: number; step: number; finished: boolean; best: { iou: number; epoch: number } | null }[] }
  | { type: 'error'; message: string };
