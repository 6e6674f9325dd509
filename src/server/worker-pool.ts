import { Worker } from 'node:worker_threads';
import { UserError } from '../errors.ts';
import type { SegmentationModel } from '../models/model.ts';
import type { SessionOptions } from '../runtime/types.ts';
import { workerEntry } from './worker-entry.ts';
import type { RunRequest, WorkerInit, WorkerMessage } from './inference-worker.ts';

/** Runs the network on a normalised batch [n, inChannels, size, size]; `Segmenter` satisfies it (in-thread). */
export interface BatchRunner {
  logits(batch: Float32Array, n: number): Promise<Float32Array>;
}

const ENTRY = workerEntry('inference-worker', import.meta.url);

interface Job {
  id: number;
  batch: Float32Array;
  dims: number[];
  resolve: (logits: Float32Array) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job?: Job;
  failure?: Error;
  /** The worker's session could not be created because of the user's options (UserError in the worker). */
  userFailure?: string;
}

export type PoolLog = (level: 'info' | 'warn' | 'error', message: string, err?: Error) => void;

/**
 * N worker threads, each with its own ONNX Runtime session of the model; one batch per worker at a time.
 * A worker that dies fails only the batch it was running and is replaced.
 */
export class WorkerPool implements BatchRunner {
  private readonly slots = new Set<Slot>();
  private readonly pending: Job[] = [];
  private nextId = 1;
  private closing = false;
  private spawning = 0;
  /** Workers replaced after they died. */
  restarts = 0;

  private constructor(
    private readonly init: WorkerInit,
    private readonly inputDims: readonly number[],
    private readonly log: PoolLog,
  ) {}

  /** Starts `workers` threads and waits until every session has loaded. */
  static async create(model: SegmentationModel, o: { workers: number; session?: SessionOptions; log?: PoolLog }): Promise<WorkerPool> {
    const { inChannels, size } = model.options;
    const pool = new WorkerPool({ onnx: model.toOnnx(), session: o.session ?? {} }, [inChannels, size, size], o.log ?? (() => {}));
    const started = await Promise.allSettled(Array.from({ length: o.workers }, () => pool.spawn()));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) {
      await pool.close();
      throw (failed as PromiseRejectedResult).reason;
    }
    return pool;
  }

  /** Workers ready to run. */
  get alive(): number {
    return [...this.slots].filter((s) => s.ready).length;
  }

  logits(batch: Float32Array, n: number): Promise<Float32Array> {
    if (this.closing) return Promise.reject(new Error('inference pool is closed'));
    if (this.slots.size === 0 && this.spawning === 0) return Promise.reject(new Error('no inference worker is running'));
    // the batch is transferred to the worker; make sure it owns exactly its buffer
    const own = batch.byteOffset === 0 && batch.byteLength === batch.buffer.byteLength ? batch : batch.slice();
    return new Promise((resolve, reject) => {
      this.pending.push({ id: this.nextId++, batch: own, dims: [n, ...this.inputDims], resolve, reject });
      this.pump();
    });
  }

  /**
   * Stops the workers once their current batches are done (terminating a thread inside onnxruntime-node's run
   * aborts the whole process); batches not started yet are rejected.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.pending.splice(0)) job.reject(new Error('inference pool is closed'));
    await Promise.all(
      [...this.slots].map(async (s) => {
        if (s.job) await new Promise<void>((r) => s.worker.once('message', () => r()));
        await s.worker.terminate();
      }),
    );
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.pending.length === 0) return;
      if (!slot.ready || slot.job) continue;
      const job = this.pending.shift()!;
      slot.job = job;
      slot.worker.postMessage({ id: job.id, batch: job.batch, dims: job.dims } satisfies RunRequest, [job.batch.buffer as ArrayBuffer]);
    }
  }

  private spawn(): Promise<void> {
    this.spawning++;
    return new Promise((resolve, reject) => {
      const slot: Slot = { worker: new Worker(ENTRY, { workerData: this.init }), ready: false };
      this.slots.add(slot);
      slot.worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') {
          slot.ready = true;
          this.spawning--;
          resolve();
          this.pump();
          return;
        }
        if (m.type === 'failed') {
          if (m.user) slot.userFailure = m.message;
          return;
        }
        const job = slot.job;
        if (!job || job.id !== m.id) return;
        slot.job = undefined;
        if (m.type === 'result') job.resolve(m.logits);
        else {
          const e = new Error(`inference failed: ${m.message}`);
          if (m.stack) e.stack = `${e.message}\n(worker) ${m.stack}`;
          job.reject(e);
        }
        this.pump();
      });
      slot.worker.on('error', (e) => {
        slot.failure = e;
      });
      slot.worker.on('exit', (code) => {
        this.slots.delete(slot);
        const why = slot.failure ?? new Error(`inference worker exited with code ${code}`);
        if (!slot.ready) {
          this.spawning--;
          reject(slot.userFailure !== undefined ? new UserError(slot.userFailure) : new Error(`inference worker failed to start: ${why.message}`));
        }
        if (slot.job) slot.job.reject(new Error(`inference worker died during a run: ${why.message}`));
        if (this.closing) return;
        if (slot.ready) {
          this.log('error', `inference worker died (${why.message}); starting a replacement`, why);
          this.restarts++;
          this.spawn().catch((e: Error) => this.log('error', e.message, e));
        }
        if (this.slots.size === 0 && this.spawning === 0) for (const job of this.pending.splice(0)) job.reject(new Error('no inference worker is running'));
        this.pump();
      });
    });
  }
}
