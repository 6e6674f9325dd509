/** A dense float32 tensor in C order. */
export interface Tensor {
  data: Float32Array;
  dims: readonly number[];
}

export type TensorMap = Record<string, Tensor>;

export interface SessionOptions {
  /** Intra-op threads (default 1). */
  threads?: number;
  /** Busy-wait between ops; off by default, which suits a shared machine. */
  spinning?: boolean;
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * ORT's memory-pattern planning (default true). Training graphs turn it off: with it, a MobileUtr training step
   * at batch 8, 256x256 peaks at 6.1 GB instead of 3.6 GB RSS, at the same speed (ORT 1.30).
   */
  memoryPattern?: boolean;
  /** Write ONNX Runtime's per-node profile (Chrome trace JSON) to files starting with this path (benchmarks). */
  profilePrefix?: string;
  /**
   * onnxruntime-node only (the browser picks with WebSessionOptions.backend): 'cpu' (default) or 'webgpu', its
   * WebGPU execution provider, with the CPU for nodes WebGPU cannot run. Where WebGPU cannot start, session creation
   * fails with a one-line UserError. A user's 'auto' is resolved first (resolveDevice in src/runtime/device.ts).
   */
  device?: 'cpu' | 'webgpu';
  /**
   * onnxruntime-node on the CPU only: keep ONNX Runtime's optimized graph in the folder MOBILEUTR_CACHE_DIR names
   * and open it from there next time (src/runtime/compile-cache.ts; nothing happens while it is unset). Trainers
   * ask for it: a training graph takes seconds to optimize.
   */
  compileCache?: boolean;
}

/** What the pipeline needs from a runtime: ONNX Runtime on Node or in the browser. */
export interface InferenceBackend {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: TensorMap, outputs?: readonly string[]): Promise<TensorMap>;
  release(): Promise<void>;
}
