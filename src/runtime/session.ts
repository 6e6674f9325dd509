// The only module that imports ONNX Runtime for Node; the web app has its own twin behind the same interface.
import * as ort from 'onnxruntime-node';
import { compileCacheEntry } from './compile-cache.ts';
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

/** A session, through the compile cache (src/runtime/compile-cache.ts) where the options ask for it. */
async function createSession(model: Uint8Array, options: SessionOptions): Promise<ort.InferenceSession> {
  const optimization = options.optimization ?? 'all';
  const cacheable = options.compileCache === true && (options.device ?? 'cpu') === 'cpu' && optimization !== 'disabled';
  const entry = cacheable ? compileCacheEntry(model, { ortVersion: ort.env.versions.node ?? '', optimization }) : undefined;
  if (!entry) return ort.InferenceSession.create(model, ortOptions(options));
  if (entry.hit) {
    try {
      return await ort.InferenceSession.create(entry.path, { ...ortOptions(options), graphOptimizationLevel: 'disabled' });
    } catch {
      entry.discard();
    }
  }
  let session: ort.InferenceSession;
  try {
    // level 'all' makes ORT warn that the file it writes suits this machine only, which is what the cache key says
    session = await ort.InferenceSession.create(model, { ...ortOptions(options), optimizedModelFilePath: entry.tempPath, logSeverityLevel: 3 });
  } catch {
    entry.abandon();
    return ort.InferenceSession.create(model, ortOptions(options));
  }
  entry.commit();
  return session;
}

/** An ONNX Runtime session on onnxruntime-node. */
export class NodeSession implements InferenceBackend {
  private constructor(private readonly session: ort.InferenceSession) {}

  /** Where `options.device` is 'webgpu' and WebGPU cannot start here, rejects with a one-line UserError. */
  static async create(model: Uint8Array, options: SessionOptions = {}): Promise<NodeSession> {
    try {
      return new NodeSession(await createSession(model, options));
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
