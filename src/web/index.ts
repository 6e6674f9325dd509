/**
 * MobileUtr in the browser: segment images and volumes with an exported `.onnx` model on onnxruntime-web (WebGPU or
 * WebAssembly), without sending anything to a server. Works in any bundler (vite, webpack, esbuild); serve
 * onnxruntime-web's `.wasm`/`.mjs` files and pass their URL prefix as `wasmPaths`.
 *
 * @example
 * ```ts
 * import { WebSegmenter } from 'mobileutr/web';
 *
 * const segmenter = await WebSegmenter.create('/models/busi.onnx', { wasmPaths: '/ort/' });
 * const result = await segmenter.segment(file); // a File, Blob, ImageData or RGBA pixels
 * ```
 *
 * @packageDocumentation
 * @module mobileutr/web
 */

// segmentation
export { WebSegmenter, type ImageInput, type ModelSource } from './segmenter.ts';
export { WebSession, wasmThreads, type WebBackendName, type WebRuntimeInfo, type WebSessionOptions } from '../runtime/web.ts';
export type { InferenceBackend, SessionOptions, Tensor, TensorMap } from '../runtime/types.ts';
export { modelInfo, OnnxFormatError, readOnnxSummary, type ModelInfo, type OnnxSummary } from './onnx-info.ts';

// pre- and postprocessing (the Node pipeline's arithmetic)
export { decodeImage, ImageError, imageToTensor, MAX_IMAGE_SIDE, resizeRgba, segmentImage, type BrowserSegmentation, type RgbaImage } from './image.ts';
export { IMAGENET_MEAN, IMAGENET_STD, pixelsToTensor } from '../pipeline/normalize.ts';
export { logitsToMask, logitsToProbability } from '../pipeline/postprocess.ts';
export { resizeLinearCv2, resizeNearestCv2 } from '../data/resize.ts';

// overlays and downloads
export { CONTOUR, contourPath, OverlayView, PALETTE } from './overlay.ts';
export { encodeGreyPng } from './png.ts';

// volumes: NIfTI in, label NIfTI out, slice-wise segmentation
export { MAX_PAGE_VOXELS, readNiftiBytes, VolumeFileError } from './nifti-file.ts';
export { encodeLabelNifti, labelNiftiGz, labelValues, type LabelArray } from './nifti-label.ts';
export { classTable, inputProblem, VolumeSegmenter, type ClassTable, type InputMode } from './volume-segment.ts';
export { imageSliceInput, sliceCount, volumeSliceInput } from './volume-slices.ts';
export { intensityLabel, volumeMetaOf } from './volume-meta.ts';
export { autoWindow, formatWindow, looksLikeCt, WINDOW_PRESETS, windowPlane, type WindowLevel, type WindowPreset } from './window-level.ts';
export { axisCodes, fromCanonical, toCanonical, toCanonicalData, type Reorientation } from '../data/volume/orientation.ts';
export { cutPlane, pastePlane, slicePlane, type SliceAxis } from '../data/volume/slices.ts';
export { intensityMap, quantize, type Intensity, type IntensityMap } from '../data/volume/intensity.ts';
export { formatDims, voxelCount, type NiftiGrid, type Vec3, type Volume } from '../data/volume/volume.ts';
export type { VolumeModelMeta } from '../data/volume/model-meta.ts';

// training in the browser (a Web Worker is the place to call these; see web/src/train-worker.ts)
export {
  BROWSER_DEFAULTS,
  browserConfig,
  browserSource,
  evaluateBrowserRun,
  openBrowserRun,
  resumeBrowserRun,
  startBrowserRun,
  WEB_TRAINING_OPTIMIZATION,
  webLogits,
  type BrowserRun,
  type BrowserRunOptions,
  type BrowserTrainSettings,
} from './train/run.ts';
export { BROWSER_IMAGE_EXTENSIONS, DatasetLayoutError, indexDataset, type BrowserDataset, type DatasetFile, type PairFiles } from './train/dataset.ts';
export { checkBrowserDataset, type BrowserCheckReport } from './train/check.ts';
export { decodePair, decodeRgba, ImageDecodeError } from './train/decode.ts';
export { deleteRun, listRuns, loadDataset, readFileAt, runDirectory, saveDataset, writeFileAt } from './train/opfs-store.ts';
export { decomposeTrainingBatchNorm } from '../runtime/webgpu-compat.ts';
