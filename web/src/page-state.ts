// What the page exposes on `window.mobileutr` for its browser test and benchmark (read it; do not write it).
import type { WebRuntimeInfo } from '../../src/runtime/web.ts';
import type { ModelInfo } from '../../src/web/onnx-info.ts';
import type { BrowserSegmentation } from '../../src/web/image.ts';

export interface PageState {
  state: 'starting' | 'idle' | 'loading-model' | 'running' | 'done' | 'error';
  /** The loaded model: what the page read from it, the file it came from, and where it runs. */
  model?: ModelInfo & { file: string; runtime: WebRuntimeInfo };
  image?: { name: string; width: number; height: number };
  /** The latest segmentation, with the model file and image name it belongs to. */
  result?: BrowserSegmentation & { modelSource: string; imageName: string };
  /** What the viewer shows: a 2-D image (default) or a NIfTI volume. */
  mode?: 'image' | 'volume';
  /** The open volume (volume-app.ts). */
  volume?: VolumePageState;
  /** The latest error shown to the user. */
  error?: string;
  /** Runs the loaded model `n` times on the loaded image and returns each session.run time (ms). */
  bench?: (n: number) => Promise<number[]>;
}

declare global {
  interface Window {
    mobileutr: PageState;
  }
}

export interface VolumePageState {
  name: string;
  /** The file's voxel grid and the directions its axes run towards (e.g. 'LPS'). */
  sourceDims: number[];
  orientation: string;
  /** The canonical RAS+ grid the page slices (i towards R, j towards A, k towards S) and its voxel size (mm). */
  dims: number[];
  spacing: number[];
  /** The axial slice shown (canonical k, 0 = most inferior) and how many there are. */
  slice: number;
  slices: number;
  window: { level: number; width: number };
  preset: string;
  /** How slices are prepared for the model: from its metadata, or the user's choice when it has none. */
  input?: { source: 'metadata' | 'choice'; kind: 'volume' | 'image'; intensity?: string; context: number; axis: string };
  /** The segmentation so far. */
  result?: {
    modelSource: string;
    axis: string;
    segmented: number;
    slices: number;
    complete: boolean;
    classValues: number[];
    classNames: string[];
    /** Voxels per class (index order). */
    counts: number[];
    inferenceMs: number;
    totalMs: number;
  };
  /** The grey pixels as displayed (anterior up), row by row. */
  displayed: () => { grey: number[]; width: number; height: number } | undefined;
}
