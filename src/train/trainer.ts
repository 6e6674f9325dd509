// The trainer: owns weights, optimizer state and BatchNorm statistics as Float32Arrays and runs one training
// graph per step. It talks to ONNX Runtime only through the InferenceBackend interface, so it runs unchanged on
// onnxruntime-web when given a web backend.
import { GraphBuilder } from '../ir/builder.ts';
import { buildTrainingGraph, buildUpdateGraph, type LossBuilder, type TrainingGraph } from '../autodiff/training-graph.ts';
import type { SegmentationModel } from '../models/model.ts';
import { sgd, type Optimizer } from '../optim/optimizers.ts';
import type { InferenceBackend, SessionOptions, Tensor, TensorMap } from '../runtime/types.ts';
import { Rng } from '../util/rng.ts';

/** Creates a runtime session from ONNX bytes (default: onnxruntime-node). */
export type BackendFactory = (model: Uint8Array, options: SessionOptions) => Promise<InferenceBackend>;

export interface TrainerOptions {
  /** Default: SGD, momentum 0.9, weight decay 1e-4 (the paper's). */
  optimizer?: Optimizer;
  /** Default: BCE + Dice for one class, CE + Dice for several. */
  loss?: LossBuilder;
  /** Micro-batches per optimizer step (default 1); gradients are averaged over them. */
  accumulate?: number;
  /** Intra-op threads (default 1). */
  threads?: number;
  /** Busy-wait between ops (default false: right for a shared machine). */
  spinning?: boolean;
  /**
   * Where the training graphs run (default 'cpu'; 'webgpu': onnxruntime-node's WebGPU execution provider, see
   * SessionOptions.device). Passed to the backend factory in its session options.
   */
  device?: 'cpu' | 'webgpu';
  /** Seed of the DropPath masks (default 41). */
  seed?: number;
  /** Overrides the rate of every DropPath in the model; 0 disables DropPath. */
  dropPathRate?: number;
  /** Session factory (default: onnxruntime-node via src/runtime/session.ts). */
  backend?: BackendFactory;
  /**
   * Tests and replays: the DropPath keep flags (0 or 1 per sample) for one mask input of the graph
   * (`randomInputs`, e.g. `lklgl_bottleneck.0.LocalAgg.drop_mask_<n>`, in execution order), called every step.
   * Kept samples are scaled by 1/keep as for drawn masks. Returning undefined draws the mask as usual.
   */
  keepMasks?: (site: DropSite, step: number) => ArrayLike<number> | undefined;
}

/** One DropPath mask input of a training graph. */
export interface DropSite {
  input: string;
  shape: number[];
  keepProb: number;
}

export interface StepResult {
  /** Loss of this (micro-)batch. */
  loss: number;
  /** L2 norm of the gradient that was applied (averaged over micro-batches); only when `applied`. */
  gradNorm?: number;
  /** Whether this call ran an optimizer update (always, unless accumulating). */
  applied: boolean;
  /** Optimizer steps done so far. */
  step: number;
  /**
   * The loss, the gradient, or anything the step would commit (updated weights, optimizer state, BatchNorm
   * statistics, gradient sums) was NaN or infinite: nothing was committed (weights, optimizer state, BatchNorm
   * statistics and accumulated gradients are as before this call; a bad accumulated sum is discarded).
   */
  nonFinite: boolean;
  /** With `nonFinite`: the first graph output found NaN or infinite (`loss`, `grad_norm_sq`, `next.<name>`). */
  nonFiniteOutput?: string;
}

/** Everything needed to resume training exactly (weights live in the model's state_dict). */
export interface TrainerState {
  step: number;
  micro: number;
  optimizer: { name: string; config: Record<string, number | boolean | string> };
  /** Optimizer state (`<slot>.<param>`) and pending gradient sums (`acc.<param>`). */
  tensors: Map<string, Float32Array>;
  rng: number[];
  /** Weight of the pending gradient sums in units of `accUnit` images (see Trainer.flush); absent in old checkpoints. */
  accWeight?: number;
  accUnit?: number;
}

interface CompiledGraph {
  graph: TrainingGraph;
  session: InferenceBackend;
}

/**
 * onnxruntime-node, loaded only when a trainer is made without a backend (in Node). The specifier is a variable so
 * that browser bundlers leave it alone: the browser trainer always passes its onnxruntime-web backend, and bundling
 * onnxruntime-node's JS into a web app only adds an unused chunk and warnings about Node built-ins.
 */
const NODE_SESSION_MODULE = '../runtime/session.ts';
const defaultBackend: BackendFactory = async (bytes, options) => {
  const { NodeSession } = (await import(/* @vite-ignore */ NODE_SESSION_MODULE)) as typeof import('../runtime/session.ts');
  return NodeSession.create(bytes, options);
};

const size = (shape: readonly number[]) => shape.reduce((a, d) => a * d, 1);

/** The lr is fed as float32: 1e39 is finite here but infinite in the graph. */
function checkLearningRate(lr: number): void {
  if (!Number.isFinite(Math.fround(lr))) throw new Error(`learning rate must be finite in float32, got ${lr}`);
}

/** The first of `names` in `out` holding a NaN or an infinity (x·0 is NaN exactly for those: one cheap pass). */
function firstNonFinite(out: TensorMap, names: readonly string[]): string | undefined {
  for (const name of names) {
    const data = out[name]!.data;
    let probe = 0;
    for (let i = 0; i < data.length; i++) probe += data[i]! * 0;
    if (probe !== 0) return name;
  }
  return undefined;
}

/**
 * Trains `model` in place: every optimizer step replaces the arrays in `model.weights` (parameters and BatchNorm
 * buffers). Graphs and sessions are built once per batch size and cached.
 *
 * @example
 * const trainer = createTrainer(createModel('mobileutr', { size: 256 }), { threads: 2 });
 * const lr = poly({ base: 0.01, total: 300 * 57 });
 * const { loss, gradNorm } = await trainer.step(images, masks, lr(trainer.stepCount)); // images [8,3,256,256]
 */
export class Trainer {
  readonly optimizer: Optimizer;
  readonly accumulate: number;
  private readonly graphs = new Map<string, Promise<CompiledGraph>>();
  private readonly state = new Map<string, Float32Array>();
  private readonly rng: Rng;
  private readonly sessionOptions: SessionOptions;
  private readonly backend: BackendFactory;
  private steps = 0;
  private micro = 0;
  private accWeight = 0;
  private accUnit = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly model: SegmentationModel,
    private readonly options: TrainerOptions = {},
  ) {
    this.optimizer = options.optimizer ?? sgd({ momentum: 0.9, weightDecay: 1e-4 });
    this.accumulate = options.accumulate ?? 1;
    if (!Number.isInteger(this.accumulate) || this.accumulate < 1) throw new Error(`accumulate must be an integer >= 1, got ${this.accumulate}`);
    const rate = options.dropPathRate;
    if (rate !== undefined && !(rate >= 0 && rate < 1)) throw new Error(`dropPathRate must be in [0, 1), got ${rate}`);
    this.rng = new Rng(options.seed ?? 41);
    this.sessionOptions = {
      threads: options.threads ?? 1,
      spinning: options.spinning ?? false,
      memoryPattern: false,
      compileCache: true,
      ...(options.device ? { device: options.device } : {}),
    };
    this.backend = options.backend ?? defaultBackend;
  }

  /** Optimizer steps done. */
  get stepCount(): number {
    return this.steps;
  }

  /**
   * One micro-batch: images [N, C, H, W] and targets [N, K, H, W] (0/1 masks; one-hot for several classes).
   * Runs the optimizer update at learning rate `lr` on every `accumulate`-th call.
   */
  step(images: Tensor, targets: Tensor, lr: number): Promise<StepResult> {
    // steps run one at a time: each reads the state the previous one wrote (and ORT keeps BatchNorm's batch
    // statistics in session memory, so two runs of one session must not overlap)
    const run = this.queue.then(() => this.runStep(images, targets, lr));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async runStep(images: Tensor, targets: Tensor, lr: number): Promise<StepResult> {
    const batch = images.dims[0]!;
    const { size: hw, inChannels, classes } = this.model.options;
    const expectImage = [batch, inChannels, hw, hw];
    const expectTarget = [batch, classes, hw, hw];
    if (images.dims.join() !== expectImage.join()) throw new Error(`images must be [${expectImage}], got [${images.dims}]`);
    if (targets.dims.join() !== expectTarget.join()) throw new Error(`targets must be [${expectTarget}], got [${targets.dims}]`);
    checkLearningRate(lr);

    const fused = this.accumulate === 1;
    if (!fused) this.rescaleAccumulated(batch);
    const { graph, session } = await this.compiled(batch, fused);
    const feeds: TensorMap = { [graph.image]: images, [graph.target]: targets };
    for (const p of [...graph.params, ...graph.buffers]) feeds[p.input] = { data: this.weight(p.input), dims: p.shape };
    for (const s of graph.state) feeds[s.input] = { data: this.stateTensor(s.input, s.shape), dims: s.shape };
    for (const r of graph.randomInputs) feeds[r.input] = { data: this.dropMask(r), dims: r.shape };
    if (fused) Object.assign(feeds, this.scalarFeeds(lr));

    const out = await session.run(feeds);
    const loss = out.loss!.data[0]!;
    const batchNorm = Math.sqrt(out.grad_norm_sq!.data[0]!);
    const committed = [...graph.buffers, ...graph.state, ...(fused ? graph.params : [])].map((t) => t.output);
    const bad = !Number.isFinite(loss) ? 'loss' : !Number.isFinite(batchNorm) ? 'grad_norm_sq' : firstNonFinite(out, committed);
    if (bad !== undefined) {
      // commit nothing; and since train-mode BatchNorm keeps batch statistics in session memory (ORT aliases
      // them) where 0·NaN stays NaN, a non-finite forward gets a fresh session next time
      if (!Number.isFinite(loss)) await this.evict(batch, fused);
      return { loss, gradNorm: batchNorm, applied: false, step: this.steps, nonFinite: true, nonFiniteOutput: bad };
    }
    for (const b of graph.buffers) this.model.weights.set(b.input, out[b.output]!.data);
    for (const s of graph.state) this.state.set(s.input, out[s.output]!.data);
    if (fused) {
      for (const p of graph.params) this.model.weights.set(p.input, out[p.output]!.data);
      this.steps++;
      return { loss, gradNorm: batchNorm, applied: true, step: this.steps, nonFinite: false };
    }
    this.micro++;
    this.accWeight++;
    if (this.micro < this.accumulate) return { loss, applied: false, step: this.steps, nonFinite: false };
    this.micro = 0;
    const { norm: gradNorm, bad: badUpdate } = await this.applyAccumulated(graph, lr);
    if (badUpdate !== undefined) return { loss, gradNorm, applied: false, step: this.steps, nonFinite: true, nonFiniteOutput: badUpdate };
    this.steps++;
    return { loss, gradNorm, applied: true, step: this.steps, nonFinite: false };
  }

  /** Micro-batches whose gradients are summed but not yet applied. */
  get pendingMicroBatches(): number {
    return this.micro;
  }

  /**
   * Applies the pending micro-batches of an incomplete accumulation group now, at learning rate `lr` (the end of
   * an epoch whose batches do not fill the last group); undefined when none are pending. Like a full group it
   * averages over images: micro-batches of 8, 8 and 4 images weigh 2:2:1.
   */
  flush(lr: number): Promise<Omit<StepResult, 'loss'> | undefined> {
    const run = this.queue.then(async (): Promise<Omit<StepResult, 'loss'> | undefined> => {
      if (this.micro === 0) return undefined;
      checkLearningRate(lr);
      const { graph } = await this.compiled(this.accUnit || 1, false); // cached: it ran the last micro-batch
      this.micro = 0;
      const { norm: gradNorm, bad } = await this.applyAccumulated(graph, lr);
      if (bad !== undefined) return { gradNorm, applied: false, step: this.steps, nonFinite: true, nonFiniteOutput: bad };
      this.steps++;
      return { gradNorm, applied: true, step: this.steps, nonFinite: false };
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * The gradient sums hold Σ_j (n_j / accUnit)·g_j, with g_j the mean gradient of micro-batch j of n_j images, and
   * accWeight = Σ_j n_j / accUnit, so sums / accWeight is the mean over the group's images (1/accumulate for equal
   * micro-batches, as before). The gradient graph adds its micro-batch with weight 1: one of another size first
   * rescales the sums to its own unit.
   */
  private rescaleAccumulated(n: number): void {
    if (this.accUnit > 0 && this.accUnit !== n && this.accWeight > 0) {
      const f = this.accUnit / n;
      for (const [k, v] of this.state) if (k.startsWith('acc.')) for (let i = 0; i < v.length; i++) v[i] = v[i]! * f;
      this.accWeight *= f;
    }
    this.accUnit = n;
  }

  /** Optimizer state and accumulators, for checkpoints. */
  exportState(): TrainerState {
    return {
      step: this.steps,
      micro: this.micro,
      optimizer: { name: this.optimizer.name, config: { ...this.optimizer.config } },
      tensors: new Map([...this.state].map(([k, v]) => [k, v.slice()])),
      rng: this.rng.getState(),
      accWeight: this.accWeight,
      accUnit: this.accUnit,
    };
  }

  loadState(s: TrainerState): void {
    if (s.optimizer.name !== this.optimizer.name) throw new Error(`checkpoint optimizer ${s.optimizer.name} does not match ${this.optimizer.name}`);
    this.steps = s.step;
    this.micro = s.micro;
    this.accWeight = s.accWeight ?? s.micro;
    this.accUnit = s.accUnit ?? 0;
    this.state.clear();
    for (const [k, v] of s.tensors) this.state.set(k, v.slice());
    this.rng.setState(s.rng);
  }

  async release(): Promise<void> {
    const compiled = await Promise.all(this.graphs.values());
    this.graphs.clear();
    await Promise.all(compiled.map((c) => c.session.release()));
  }

  private key(batch: number, fused: boolean): string {
    return `${this.model.name}:${batch}:${this.model.options.size}:${fused ? 'step' : 'grad'}`;
  }

  private async evict(batch: number, fused: boolean): Promise<void> {
    const key = this.key(batch, fused);
    const entry = this.graphs.get(key);
    this.graphs.delete(key);
    if (entry) await (await entry).session.release();
  }

  private compiled(batch: number, fused: boolean): Promise<CompiledGraph> {
    const key = this.key(batch, fused);
    let entry = this.graphs.get(key);
    if (!entry) {
      entry = (async () => {
        const graph = buildTrainingGraph(this.model, { batch, optimizer: fused ? this.optimizer : undefined, loss: this.options.loss });
        return { graph, session: await this.backend(graph.onnx, this.sessionOptions) };
      })();
      this.graphs.set(key, entry);
      entry.catch(() => this.graphs.delete(key));
    }
    return entry;
  }

  private updateGraph(params: TrainingGraph['params']): Promise<CompiledGraph> {
    let entry = this.graphs.get('update');
    if (!entry) {
      entry = (async () => {
        const b = new GraphBuilder({ rng: new Rng(0) });
        const graph = buildUpdateGraph(b, new Map(params.map((p) => [p.input, p.shape])), this.optimizer);
        return { graph, session: await this.backend(graph.onnx, this.sessionOptions) };
      })();
      this.graphs.set('update', entry);
    }
    return entry;
  }

  /** Applies the averaged gradient sums (always discarded); commits nothing if any output is non-finite. */
  private async applyAccumulated(gradGraph: TrainingGraph, lr: number): Promise<{ norm: number; bad?: string }> {
    const { graph, session } = await this.updateGraph(gradGraph.params);
    // the mean over the group's images (see rescaleAccumulated)
    const scale = 1 / this.accWeight;
    this.accWeight = 0;
    this.accUnit = 0;
    const feeds: TensorMap = { ...this.scalarFeeds(lr), grad_scale: { data: Float32Array.of(scale), dims: [] } };
    for (const p of graph.params) {
      feeds[p.input] = { data: this.weight(p.input), dims: p.shape };
      const acc = `acc.${p.input}`;
      feeds[`grad.${p.input}`] = { data: this.stateTensor(acc, p.shape), dims: p.shape };
      this.state.delete(acc);
    }
    for (const s of graph.state) feeds[s.input] = { data: this.stateTensor(s.input, s.shape), dims: s.shape };
    const out = await session.run(feeds);
    const norm = Math.sqrt(out.grad_norm_sq!.data[0]!);
    const bad = !Number.isFinite(norm) ? 'grad_norm_sq' : firstNonFinite(out, [...graph.params, ...graph.state].map((t) => t.output));
    if (bad !== undefined) return { norm, bad };
    for (const p of graph.params) this.model.weights.set(p.input, out[p.output]!.data);
    for (const s of graph.state) this.state.set(s.input, out[s.output]!.data);
    return { norm };
  }

  private scalarFeeds(lr: number): TensorMap {
    const values = this.optimizer.scalars(lr, this.steps + 1);
    return Object.fromEntries(Object.entries(values).map(([k, v]) => [`optim.${k}`, { data: Float32Array.of(v), dims: [] }]));
  }

  private weight(name: string): Float32Array {
    const w = this.model.weights.get(name);
    if (!w) throw new Error(`model has no weight ${name}`);
    return w;
  }

  /** Optimizer state or accumulator, zero-initialised on first use (PyTorch's first momentum step equals this). */
  private stateTensor(name: string, shape: readonly number[]): Float32Array {
    let t = this.state.get(name);
    if (!t) {
      t = new Float32Array(size(shape));
      this.state.set(name, t);
    }
    return t;
  }

  /** Per-sample DropPath mask: 0 with probability 1 − keep, else 1/keep (PyTorch's drop_path); or the given flags. */
  private dropMask(site: DropSite): Float32Array {
    const keep = this.options.dropPathRate === undefined ? site.keepProb : 1 - this.options.dropPathRate;
    const mask = new Float32Array(size(site.shape));
    const given = this.options.keepMasks?.(site, this.steps);
    if (given) {
      if (given.length !== mask.length) throw new Error(`keep mask for ${site.input} has ${given.length} values, expected ${mask.length}`);
      for (let i = 0; i < mask.length; i++) mask[i] = given[i]! === 0 ? 0 : 1 / keep;
      return mask;
    }
    for (let i = 0; i < mask.length; i++) mask[i] = keep >= 1 ? 1 : this.rng.next() < keep ? 1 / keep : 0;
    return mask;
  }
}

/**
 * Creates a trainer for `model`: one ONNX training graph (forward, gradients, optimizer update) per step.
 *
 * @example
 * ```ts
 * const trainer = createTrainer(model, { threads: 2 });
 * const { loss } = await trainer.step({ data: images, dims: [8, 3, 256, 256] }, { data: masks, dims: [8, 1, 256, 256] }, 0.01);
 * await trainer.release(); // the model's weights now hold the update
 * ```
 */
export function createTrainer(model: SegmentationModel, options: TrainerOptions = {}): Trainer {
  return new Trainer(model, options);
}
