/**
 * MobileUtr for Node: build, load, train, evaluate and export segmentation models, and read images and volumes.
 * Networks run in ONNX Runtime (onnxruntime-node); browsers use the `mobileutr/web` entry instead.
 *
 * @example Segment an image
 * ```ts
 * import { loadModel, Segmenter } from 'mobileutr';
 *
 * const model = await loadModel({ weights: 'best.safetensors' });
 * const segmenter = await Segmenter.create(model, { threads: 2 });
 * const { mask, width, height } = await segmenter.segment('scan.png');
 * await segmenter.release();
 * ```
 *
 * @example Train with the paper's protocol
 * ```ts
 * import { PAPER_DEFAULTS, train } from 'mobileutr';
 *
 * const result = await train('runs/busi', { ...PAPER_DEFAULTS, data: 'datasets/busi', classes: 1, epochs: 20, size: 128 });
 * console.log(result.position.best);
 * ```
 *
 * @packageDocumentation
 * @module mobileutr
 */

// models
export { createModel, modelDefinition, resolveOptions, SegmentationModel } from './models/model.ts';
export type { GraphOptions, ModelGraph, ModelOptions, ResolvedModelOptions } from './models/model.ts';
export { MODELS, type ModelDefinition } from './models/registry.ts';
export { loadModel, type LoadModelOptions } from './models/load.ts';
export { PRETRAINED, weightsPath, type PretrainedWeights } from './models/pretrained.ts';
export { loadStateDict, loadWeights, saveWeights, stateDictTensors } from './models/weights.ts';
export { graphMacs, layerTable, type LayerRow, type MacCount } from './analysis/complexity.ts';
export { UserError } from './errors.ts';

// inference
export { Segmenter, type Segmentation } from './pipeline/segmenter.ts';
export { logitsToMask, logitsToProbability } from './pipeline/postprocess.ts';
export { IMAGENET_MEAN, IMAGENET_STD, pixelsToTensor } from './pipeline/normalize.ts';
export { segmentVolume, type SegmentVolumeOptions, type VolumeSegmentation } from './pipeline/volume.ts';
export { NodeSession } from './runtime/session.ts';
export { probeWebGpu, resolveDevice, type Device, type DeviceChoice, type ResolvedDevice, type WebGpuProbe } from './runtime/device.ts';
export type { InferenceBackend, SessionOptions, Tensor, TensorMap } from './runtime/types.ts';

// export
export { exportOnnx, type ExportOptions } from './pipeline/export.ts';
export { OPSET } from './ir/opset.ts';

// training
export { createTrainer, Trainer, type StepResult, type TrainerOptions, type TrainerState } from './train/trainer.ts';
export { runTraining as train, type TrainEvents, type TrainRunOptions, type TrainRunResult } from './train/loop.ts';
export { checkConfig, PAPER_DEFAULTS, type TrainConfig, type VolumeTrainOptions } from './train/config.ts';
export { adamW, sgd, type AdamWOptions, type Optimizer, type SgdOptions } from './optim/optimizers.ts';
export { afterStep, constant, cosine, poly, type Schedule, type ScheduleOptions } from './optim/schedules.ts';

// evaluation
export { evaluate, type Evaluation, type ImageResult, type LogitsSource } from './eval/evaluate.ts';
export { hd95, METRIC_NAMES, MetricAccumulator, scoreMasks, type Scores } from './eval/metrics.ts';
export { drawOverlay, PRED_COLOUR, TRUTH_COLOUR, type Rgb } from './eval/overlay.ts';
export { htmlReport, perImageCsv, summaryLines, type ReportCase } from './eval/report.ts';
export * as volumeMetrics from './eval/volume/index.ts';

// data: 2-D datasets and images
export { detectLayout, IMAGE_EXTENSIONS, scanDataset, type Dataset, type DatasetLayout } from './data/dataset.ts';
export { checkDataset, type CheckOptions, type CheckReport, type Finding, type Severity } from './data/check.ts';
export {
  decodeImage,
  encodePng,
  IMAGE_FORMATS,
  imageSize,
  MAX_IMAGE_PIXELS,
  readImageHeader,
  resizeImage,
  type DecodedImage,
  type ImageHeader,
} from './data/image.ts';
export { makeSplit, readSplitFile, writeSplitFile } from './data/split.ts';
export { BatchLoader, collate, type Batch, type LoaderOptions } from './data/loader.ts';

// data: volumes (NIfTI, DICOM series)
export {
  checkVolumeDataset,
  classTable,
  decodeNifti,
  detectVolumeLayout,
  isNiftiPath,
  readDicomSeries,
  readNifti,
  readNiftiHeader,
  readVolume,
  scanVolumeDataset,
  toCanonical,
  volumeMetaFrom,
  volumeMetadata,
  writeLabelNifti,
  type Intensity,
  type NiftiGrid,
  type Volume,
  type VolumeCase,
  type VolumeDataset,
  type VolumeModelMeta,
} from './data/volume/index.ts';

// weights files
export {
  encodeSafetensors,
  MAX_FILE_HEADER_BYTES,
  parseSafetensors,
  readSafetensorsFile,
  writeSafetensorsFile,
  type SafetensorsFile,
  type StoredTensor,
} from './io/safetensors.ts';
