// Training in the browser: the same loop as `mobileutr train` (run-core.ts trainWith: the paper's protocol, the
// schedule, validation, best-by-IoU, exact resume) over picked files decoded by the browser, a run folder in OPFS and
// onnxruntime-web (WebGPU where available, else wasm). Meant to run in a Web Worker.
import { Batcher } from '../../data/batcher.ts';
import { makeSplit } from '../../data/split-draw.ts';
import { UserError } from '../../errors.ts';
import { scoreSamples, type Evaluation } from '../../eval/score-samples.ts';
import type { SegmentationModel } from '../../models/model.ts';
import { PAPER_DEFAULTS, type TrainConfig } from '../../train/config.ts';
import { pairSource } from '../../train/pair-source.ts';
import { trainWith, type TrainRunOptions, type TrainRunResult } from '../../train/run-core.ts';
import type { TrainingSource } from '../../train/sources-types.ts';
import type { InferenceBackend, SessionOptions, TensorMap } from '../../runtime/types.ts';
import { WebSession, type WebRuntimeInfo, type WebSessionOptions } from '../../runtime/web.ts';
import { indexDataset, type BrowserDataset, type DatasetFile } from './dataset.ts';
import { decodePair } from './decode.ts';
import { probeWebGpuTraining } from './webgpu-probe.ts';
import { loadDataset, opfsStore, readText, runDirectory, saveDataset, writeFileAt } from './opfs-store.ts';

/** What the page lets a user set; everything else is the paper's protocol (PAPER_DEFAULTS). */
export interface BrowserTrainSettings {
  /** Architecture, a name of src/models/registry.ts (default 'mobileutr'). */
  model?: string;
  /** Square input size, a multiple of 16 (default 128: a laptop's choice). */
  size?: number;
  epochs?: number;
  batch?: number;
  /** Validation fraction of the seeded split (default 0.3). */
  val?: number;
  seed?: number;
  lr?: number;
}

export const BROWSER_DEFAULTS = { size: 128, epochs: 30, batch: 8 } as const;

/**
 * Graph optimization level of the browser's training sessions. ONNX Runtime Web 1.30's extended-level fusions move
 * MobileUtr's gradients by ~1e-2 relative to onnxruntime-node's (one train64 step, test/browser/train.test.ts); with
 * the basic level they agree within 2e-5, so training in the page follows the CLI.
 */
export const WEB_TRAINING_OPTIMIZATION = 'basic' as const;

export interface BrowserRunOptions extends Omit<TrainRunOptions, 'resume'> {
  /** 'auto' (default): WebGPU on a hardware adapter, else wasm; 'webgpu' also takes a software adapter. */
  backend?: WebSessionOptions['backend'];
  /** Where onnxruntime-web's .mjs/.wasm files are served (see WebSessionOptions). */
  wasmPaths?: string;
  /** wasm threads (needs a cross-origin isolated page). */
  threads?: number;
  /** Called once the training session exists: what it runs on. */
  onRuntime?(info: WebRuntimeInfo): void;
}

/** The training config of a new browser run: the paper's protocol with the page's settings. */
export function browserConfig(dataset: BrowserDataset, settings: BrowserTrainSettings): TrainConfig {
  return {
    ...PAPER_DEFAULTS,
    model: settings.model ?? PAPER_DEFAULTS.model,
    size: settings.size ?? BROWSER_DEFAULTS.size,
    epochs: settings.epochs ?? BROWSER_DEFAULTS.epochs,
    batch: settings.batch ?? BROWSER_DEFAULTS.batch,
    val: settings.val ?? PAPER_DEFAULTS.val,
    seed: settings.seed ?? PAPER_DEFAULTS.seed,
    lr: settings.lr ?? PAPER_DEFAULTS.lr,
    threads: 1,
    workers: 1,
    data: dataset.root || 'browser',
    classes: dataset.classes === 1 ? 1 : dataset.classes + 1,
  };
}

/** A TrainingSource over the picked files: the Node trainer's Batcher (shuffle, augmentation, cv2 resize) and scoring. */
export function browserSource(dataset: BrowserDataset, config: TrainConfig, train: string[], val: string[]): TrainingSource & { batcher: Batcher } {
  const inChannels = config.inChannels === 1 ? 1 : 3;
  const batcher = new Batcher((id) => decodePair(dataset.pairs.get(id)!, inChannels), {
    size: config.size,
    inChannels: config.inChannels,
    augmentAfterResize: config.augmentAfterResize,
  });
  const source = pairSource(batcher, config, { maskClasses: dataset.classes, train, val, weightsMetadata: { trained_in: 'browser' }, problems: dataset.problems });
  return { ...source, batcher };
}

/** A Segmenter-like runner (logits of a normalised batch) on onnxruntime-web, with the model's current weights. */
export async function webLogits(model: SegmentationModel, o: WebSessionOptions): Promise<{ logits(batch: Float32Array, n: number): Promise<Float32Array>; release(): Promise<void>; info: WebRuntimeInfo }> {
  const session = await WebSession.create(model.toOnnx(), o);
  const { inChannels, size } = model.options;
  return {
    info: session.info,
    async logits(batch, n) {
      const out = await session.run({ input: { data: batch, dims: [n, inChannels, size, size] } }, ['logits']);
      return out.logits!.data;
    },
    release: () => session.release(),
  };
}

function sessionOptions(o: BrowserRunOptions): WebSessionOptions {
  return { ...(o.backend ? { backend: o.backend } : {}), ...(o.wasmPaths ? { wasmPaths: o.wasmPaths } : {}), ...(o.threads ? { threads: o.threads } : {}) };
}

export interface BrowserRun {
  name: string;
  dataset: BrowserDataset;
  config: TrainConfig;
  train: string[];
  val: string[];
}

/**
 * Starts a new run `name` on picked files: copies them into OPFS (so the run survives a reload), draws the seeded
 * split, and trains. Call {@link resumeBrowserRun} after a reload or a pause.
 */
export async function startBrowserRun(
  name: string,
  files: readonly DatasetFile[],
  settings: BrowserTrainSettings,
  o: BrowserRunOptions & { datasetJson?: string; onCopy?: (done: number, total: number) => void } = {},
): Promise<TrainRunResult> {
  const dataset = indexDataset(files, o.datasetJson);
  const config = browserConfig(dataset, settings);
  const { train, val } = makeSplit(dataset.ids, config.val, config.seed);
  const dir = (await runDirectory(name, true))!;
  await saveDataset(dir, files, o.onCopy);
  if (o.datasetJson !== undefined) await writeFileAt(dir, 'dataset.json', o.datasetJson);
  return runIn(name, dir, { name, dataset, config, train, val }, false, o);
}

/** The run `name` as OPFS keeps it: its dataset copy, config and split. */
export async function openBrowserRun(name: string): Promise<BrowserRun & { dir: FileSystemDirectoryHandle }> {
  const dir = await runDirectory(name);
  if (!dir) throw new UserError(`no run named "${name}" in this browser`);
  const configText = await readText(dir, 'config.json');
  if (!configText) throw new UserError(`${name}: the run has no config.json (it never started)`);
  const config = JSON.parse(configText) as TrainConfig;
  const dataset = indexDataset(await loadDataset(dir), await readText(dir, 'dataset.json'));
  const split = async (f: string) => ((await readText(dir, f)) ?? '').split('\n').filter(Boolean);
  const train = await split('train.txt');
  const val = await split('val.txt');
  const missing = [...train, ...val].filter((id) => !dataset.pairs.has(id));
  if (missing.length > 0) throw new UserError(`${name}: ${missing.length} ids of the run's split are not in its data (first: "${missing[0]}")`);
  return { name, dir, dataset, config, train, val };
}

/** Continues run `name` exactly where its last checkpoint left it (after a pause, a reload or a closed tab). */
export async function resumeBrowserRun(name: string, o: BrowserRunOptions = {}): Promise<TrainRunResult> {
  const run = await openBrowserRun(name);
  return runIn(name, run.dir, run, true, o);
}

/**
 * A training-graph session that leaves WebGPU for wasm when a WebGPU kernel fails at run time (ORT Web 1.30 creates
 * the session, then refuses some gradient Convs: see the README's WebGPU notes); later graphs go to wasm directly.
 */
class TrainingBackend implements InferenceBackend {
  private constructor(
    private session: WebSession,
    private readonly bytes: Uint8Array,
    private readonly options: WebSessionOptions,
    private readonly fellBack: (reason: string) => WebSessionOptions,
  ) {}

  static async create(bytes: Uint8Array, options: WebSessionOptions, fellBack: (reason: string) => WebSessionOptions): Promise<TrainingBackend> {
    return new TrainingBackend(await WebSession.create(bytes, options), bytes, options, fellBack);
  }

  get info(): WebRuntimeInfo {
    return this.session.info;
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(feeds: TensorMap, outputs?: readonly string[]): Promise<TensorMap> {
    try {
      return await this.session.run(feeds, outputs);
    } catch (e) {
      if (this.session.info.backend !== 'webgpu') throw e;
      const wasm = this.fellBack(`WebGPU failed in training (${(e as Error).message.split('\n')[0]}); training continues on WebAssembly`);
      await this.session.release().catch(() => undefined);
      this.session = await WebSession.create(this.bytes, { ...this.options, ...wasm });
      return this.session.run(feeds, outputs);
    }
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

async function runIn(name: string, dir: FileSystemDirectoryHandle, run: BrowserRun, resume: boolean, o: BrowserRunOptions): Promise<TrainRunResult> {
  let web = sessionOptions(o);
  let probeReason: string | undefined;
  if (web.backend !== 'wasm') {
    const probe = await probeWebGpuTraining({ ...web, optimization: WEB_TRAINING_OPTIMIZATION });
    if (!probe.ok) {
      web = { ...web, backend: 'wasm' };
      probeReason = probe.reason;
    }
  }
  let reported: string | undefined;
  let reportedInfo: WebRuntimeInfo | undefined;
  const report = (info: WebRuntimeInfo) => {
    const key = `${info.backend}:${info.fallbackReason ?? ''}`;
    if (key !== reported) o.onRuntime?.(info);
    reported = key;
  };
  const fellBack = (reason: string) => {
    web = { ...web, backend: 'wasm' };
    report({ ...(reportedInfo ?? { threads: 1, simd: true, crossOriginIsolated: false }), backend: 'wasm', fallbackReason: reason });
    return web;
  };
  const backend = async (bytes: Uint8Array, options: SessionOptions) => {
    const session = await TrainingBackend.create(bytes, { ...options, optimization: WEB_TRAINING_OPTIMIZATION, ...web }, fellBack);
    reportedInfo = probeReason && !session.info.fallbackReason ? { ...session.info, fallbackReason: probeReason } : session.info;
    report(reportedInfo);
    return session;
  };
  return trainWith(
    run.config,
    { source: browserSource(run.dataset, run.config, run.train, run.val), store: opfsStore(name, dir), validator: (model) => webLogits(model, web), backend },
    { ...o, resume },
  );
}

/** Scores the validation split with a model (the run's best weights), per image, with the paper's metrics. */
export async function evaluateBrowserRun(run: BrowserRun, model: SegmentationModel, o: BrowserRunOptions = {}, onProgress?: (done: number, total: number) => void): Promise<Evaluation> {
  const source = browserSource(run.dataset, run.config, run.train, run.val);
  const runner = await webLogits(model, sessionOptions(o));
  try {
    return await scoreSamples(model, runner, run.dataset.classes, run.val, (id) => source.batcher.sample(id), onProgress);
  } finally {
    await runner.release();
  }
}
