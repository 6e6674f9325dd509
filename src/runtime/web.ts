// The only module that imports ONNX Runtime for the browser: the twin of session.ts behind the same interface.
import * as ort from 'onnxruntime-web';
import type { InferenceBackend, SessionOptions, TensorMap } from './types.ts';
import { decomposeTrainingBatchNorm } from './webgpu-compat.ts';

export type { TensorMap } from './types.ts';

export type WebBackendName = 'wasm' | 'webgpu';

export interface WebSessionOptions extends SessionOptions {
  /**
   * 'auto' (default) uses WebGPU when `navigator.gpu` gives a hardware adapter, else wasm; 'webgpu' uses any adapter,
   * software ones included, and falls back to wasm when there is none or the session fails; 'wasm' never tries WebGPU.
   */
  backend?: 'auto' | WebBackendName;
  /**
   * URL prefix (ending in '/') where `ort-wasm-simd-threaded.jsep.mjs` and `.wasm` are served. Needed whenever a
   * bundler moved onnxruntime-web away from its dist folder (the Vite config serves and copies them to `ort/`).
   */
  wasmPaths?: string;
  /** ONNX Runtime's own log level for this session (0 verbose: node placements per execution provider). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

/** ONNX Runtime Web's log level ('verbose' also lists which nodes each execution provider runs). */
export function setOrtLogLevel(level: 'verbose' | 'info' | 'warning' | 'error' | 'fatal'): void {
  ort.env.logLevel = level;
}

/** What a session actually runs on (the request may have fallen back). */
export interface WebRuntimeInfo {
  backend: WebBackendName;
  /** wasm threads: more than 1 only on cross-origin isolated pages (SharedArrayBuffer). */
  threads: number;
  /** ONNX Runtime Web 1.30 ships SIMD builds only; always true where it loads. */
  simd: true;
  crossOriginIsolated: boolean;
  /** Why WebGPU was not used, when it was asked for (or tried by 'auto'). */
  fallbackReason?: string;
}

interface GpuAdapterLike {
  isFallbackAdapter?: boolean;
  info?: { isFallbackAdapter?: boolean; architecture?: string; vendor?: string };
}

interface GpuLike {
  requestAdapter(): Promise<GpuAdapterLike | null>;
}

function isolated(): boolean {
  return typeof globalThis.crossOriginIsolated === 'boolean' && globalThis.crossOriginIsolated;
}

/** Threads the wasm backend can use here: 1 unless the page is cross-origin isolated; then `requested` or the cores (max 4). */
export function wasmThreads(requested?: number): number {
  if (!isolated()) return 1;
  const cores = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency || 1 : 1;
  return Math.max(1, Math.floor(requested ?? Math.min(4, cores)));
}

/** ort.env.wasm is global and fixed once the wasm module is loaded: the first session's settings win. */
let configuredThreads: number | undefined;

function configureWasm(o: WebSessionOptions): number {
  if (configuredThreads === undefined) {
    configuredThreads = wasmThreads(o.threads);
    ort.env.wasm.numThreads = configuredThreads;
    ort.env.wasm.proxy = false;
    if (o.wasmPaths) ort.env.wasm.wasmPaths = o.wasmPaths;
  }
  return configuredThreads;
}

/** Why WebGPU should not be used here, or undefined when an adapter is there ('auto' also skips software adapters). */
async function webgpuUnavailable(wanted: 'auto' | 'webgpu'): Promise<string | undefined> {
  const gpu = (globalThis.navigator as (Navigator & { gpu?: GpuLike }) | undefined)?.gpu;
  if (!gpu) return 'navigator.gpu is not available in this browser';
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return `WebGPU adapter request failed: ${(e as Error).message}`;
  }
  if (!adapter) return 'no WebGPU adapter (GPU disabled or blocklisted)';
  const software = adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter ?? adapter.info?.architecture === 'swiftshader';
  // a CPU-emulated GPU (SwiftShader) is many times slower than wasm: only use it when asked for by name
  if (software && wanted === 'auto') return `only a software WebGPU adapter (${adapter.info?.architecture || 'fallback'}); WebAssembly is faster`;
  return undefined;
}

function ortOptions(o: WebSessionOptions, provider: WebBackendName): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    graphOptimizationLevel: o.optimization ?? 'all',
    enableMemPattern: o.memoryPattern ?? true,
    ...(o.logSeverityLevel !== undefined ? { logSeverityLevel: o.logSeverityLevel, logVerbosityLevel: 0 } : {}),
    executionMode: 'sequential',
    // spinning only applies to wasm threads; keep it off by default as on Node
    extra: { session: { intra_op: { allow_spinning: o.spinning ? '1' : '0' } } },
  };
}

/**
 * An ONNX Runtime session on onnxruntime-web: WebGPU where available ('auto': hardware adapters only), else wasm
 * (SIMD, with threads where the page is cross-origin isolated). `info` says what it runs on and why.
 *
 * @example
 * const session = await WebSession.create(new Uint8Array(await file.arrayBuffer()), { wasmPaths: '/ort/' });
 * const { logits } = await session.run({ input: { data, dims: [1, 3, 256, 256] } });
 */
export class WebSession implements InferenceBackend {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly info: WebRuntimeInfo,
  ) {}

  static async create(model: Uint8Array, options: WebSessionOptions = {}): Promise<WebSession> {
    const threads = configureWasm(options);
    const base = { threads, simd: true as const, crossOriginIsolated: isolated() };
    const wanted = options.backend ?? 'auto';
    let fallbackReason: string | undefined;
    if (wanted !== 'wasm') {
      fallbackReason = await webgpuUnavailable(wanted);
      if (!fallbackReason) {
        try {
          const session = await ort.InferenceSession.create(decomposeTrainingBatchNorm(model), ortOptions(options, 'webgpu'));
          return new WebSession(session, { ...base, backend: 'webgpu' });
        } catch (e) {
          fallbackReason = `WebGPU session failed: ${(e as Error).message}`;
        }
      }
    }
    const session = await ort.InferenceSession.create(model, ortOptions(options, 'wasm'));
    return new WebSession(session, { ...base, backend: 'wasm', ...(wanted === 'wasm' ? {} : { fallbackReason }) });
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
    for (const [name, t] of Object.entries(result)) {
      // WebGPU outputs may live on the GPU when a caller asked for that; getData() downloads in either case.
      const data = (t.location === 'cpu' ? t.data : await t.getData(true)) as Float32Array;
      out[name] = { data, dims: [...t.dims] };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
