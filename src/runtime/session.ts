// The only module that imports ONNX Runtime for Node; the web app has its own twin behind the same interface.
import * as ort from 'onnxruntime-node';
import { executionProviders, sessionError } from './device.ts';
import type { InferenceBackend, SessionOptions, TensorMap } from './types.ts';

export type { TensorMap } from './types.ts';

function ortOptions(o: SessionOptions): ort.InferenceSession.SessionOptions {
  const providers = executionProviders(o.device);
  return {
    ...(providers ? { executionProviders: providers } : {}),
    intraOpNumThreads: o.threads ?? 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: o.optimization ?? 'all',
    executionMode: 'sequential',
    enableMemPattern: o.memoryPattern ?? true,
    ...(o.profilePrefix ? { enableProfiling: true, profileFilePrefix: o.profilePrefix } : {}),
    extra: { session: { intra_op: { allow_spinning: o.spinning ? '1' : '0' } } },
  };
}

/** An ONNX Runtime session on onnxruntime-node. */
export class NodeSession implements InferenceBackend {
  private constructor(private readonly session: ort.InferenceSession) {}

  /** Where `options.device` is 'webgpu' and WebGPU cannot start here, rejects with a one-line UserError. */
  static async create(model: Uint8Array, options: SessionOptions = {}): Promise<NodeSession> {
    try {
      return new NodeSession(await ort.InferenceSession.create(model, ortOptions(options)));
    } catch (e) {
      throw sessionError(e, options.device);
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(feeds: TensorMap, outputs?: readonly string[]): Promise<TensorMap> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor('float32', t.data, t.dims);
    const result = outputs ? await this.session.run(ortFeeds, [...outputs]) : await this.session.run(ortFeeds);
    const out: TensorMap = {};
    for (const [name, t] of Object.entries(result)) out[name] = { data: t.data as Float32Array, dims: [...t.dims] };
    return out;
  }

  /** Stops profiling (sessions created with `profilePrefix`); ORT writes the trace file. */
  endProfiling(): void {
    this.session.endProfiling();
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
