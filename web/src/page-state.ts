// What the page exposes on `window.mobileutr` for its browser test and benchmark (read it; do not write it).
import type { WebRuntimeInfo } from '../../src/runtime/web.ts';
import type { ModelInfo } from './onnx-info.ts';
import type { BrowserSegmentation } from './pipeline.ts';

export interface PageState {
  state: 'starting' | 'idle' | 'loading-model' | 'running' | 'done' | 'error';
  /** The loaded model: what the page read from it, the file it came from, and where it runs. */
  model?: ModelInfo & { file: string; runtime: WebRuntimeInfo };
  image?: { name: string; width: number; height: number };
  /** The latest segmentation, with the model file and image name it belongs to. */
  result?: BrowserSegmentation & { modelSource: string; imageName: string };
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
