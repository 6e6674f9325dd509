import { Worker } from 'node:worker_threads';
import type { VolumeModelMeta } from '../data/volume/model-meta.ts';
import type { VolumeModelOptions } from '../pipeline/volume.ts';
import { workerEntry } from './worker-entry.ts';
import { HttpError } from './errors.ts';
import type { FromVolumeWorker, ToVolumeWorker, VolumeSummary } from './volume-worker.ts';
import type { PoolLog } from './worker-pool.ts';

const ENTRY = workerEntry('volume-worker', import.meta.url);

export interface VolumeJobInput {
  bytes: Uint8Array;
  source: string;
  maxVoxels: number;
  meta: VolumeModelMeta;
  options: VolumeModelOptions;
  /** Slices the worker sends at once. */
  batch: number;
}

export interface VolumeJobResult {
  /** The label NIfTI, gzip'd. */
  nifti: Uint8Array;
  summary: VolumeSummary;
  /** Time waiting for a free volume worker. */
  queueMs: number;
}

/** Runs a batch of slices [n, inChannels, size, size] through the network: the service's batcher. */
export type SliceRunner = (batch: Float32Array, n: number, signal: AbortSignal) => Promise<Float32Array>;

interface Job {
  id: number;
  input: VolumeJobInput;
  queued: number;
  started?: number;
  /** Aborted when the request goes (timeout, client gone) or a slice batch fails: stops the remaining slices. */
  abort: AbortController;
  settled: boolean;
  resolve: (r: VolumeJobResult) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job?: Job;
  failure?: Error;
}

/**
 * Volume workers: each takes one volume request at a time (decode, preprocessing, slicing, label NIfTI) and sends
 * its slice batches back here for the network; requests beyond the workers wait in a queue. A volume's memory is
 * held only in its worker, so the workers bound the volumes in memory at once.
 */
export class VolumeWorkers {
  private readonly slots = new Set<Slot>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closing = false;
  restarts = 0;

  private constructor(
    private readonly runSlices: SliceRunner,
    private readonly log: PoolLog,
  ) {}

  static async create(workers: number, runSlices: SliceRunner, log: PoolLog = () => {}): Promise<VolumeWorkers> {
    const pool = new VolumeWorkers(runSlices, log);
    const started = await Promise.allSettled(Array.from({ length: workers }, () => pool.spawn()));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) {
      await pool.close();
      throw (failed as PromiseRejectedResult).reason;
    }
    return pool;
  }

  get alive(): number {
    return [...this.slots].filter((s) => s.ready).length;
  }

  /** Volumes being segmented and waiting for a worker. */
  get stats(): { running: number; waiting: number } {
    return { running: [...this.slots].filter((s) => s.job).length, waiting: this.queue.length };
  }

  /** Segments one volume; an abort while it waits removes it, while it runs stops its remaining slices. */
  run(input: VolumeJobInput, signal: AbortSignal): Promise<VolumeJobResult> {
    if (this.closing) return Promise.reject(new Error('volume workers are closed'));
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const job: Job = { id: this.nextId++, input, queued: performance.now(), abort: new AbortController(), settled: false, resolve, reject };
      const onAbort = () => {
        const i = this.queue.indexOf(job);
        if (i >= 0) this.queue.splice(i, 1);
        this.fail(job, signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      job.abort.signal.addEventListener('abort', () => signal.removeEventListener('abort', onAbort), { once: true });
      this.queue.push(job);
      this.pump();
    });
  }

  /** Stops the workers (no ONNX Runtime runs in them, so terminating mid-job is safe); waiting jobs are rejected. */
  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.queue.splice(0)) this.fail(job, new Error('volume workers are closed'));
    await Promise.all([...this.slots].map((s) => s.worker.terminate()));
  }

  private fail(job: Job, e: unknown): void {
    if (job.settled) return;
    job.settled = true;
    job.abort.abort(e);
    job.reject(e);
  }

  private succeed(job: Job, r: VolumeJobResult): void {
    if (job.settled) return;
    job.settled = true;
    job.abort.abort(new Error('done'));
    job.resolve(r);
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (!slot.ready || slot.job) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      job.started = performance.now();
      // the worker gets its own copy of the upload (a request body may share its buffer)
      const bytes = new Uint8Array(job.input.bytes);
      const { source, maxVoxels, meta, options, batch } = job.input;
      slot.worker.postMessage({ type: 'job', id: job.id, bytes, source, maxVoxels, meta, options, batch } satisfies ToVolumeWorker, [bytes.buffer as ArrayBuffer]);
    }
  }

  private onLogits(slot: Slot, m: Extract<FromVolumeWorker, { type: 'logits' }>): void {
    const job = slot.job;
    const refuse = (message: string) => slot.worker.postMessage({ type: 'logits-error', id: m.id, call: m.call, message } satisfies ToVolumeWorker);
    if (!job || job.id !== m.id || job.settled) return refuse('request ended');
    this.runSlices(m.batch, m.n, job.abort.signal).then(
      (logits) => {
        const own = logits.byteOffset === 0 && logits.byteLength === logits.buffer.byteLength ? logits : logits.slice();
        slot.worker.postMessage({ type: 'logits', id: m.id, call: m.call, logits: own } satisfies ToVolumeWorker, [own.buffer as ArrayBuffer]);
      },
      (e: Error) => {
        this.fail(job, e);
        refuse(e?.message ?? String(e));
      },
    );
  }

  private spawn(): Promise<void> {
    return new Promise((resolve, reject) => {
      const slot: Slot = { worker: new Worker(ENTRY), ready: false };
      this.slots.add(slot);
      slot.worker.on('message', (m: FromVolumeWorker) => {
        if (m.type === 'ready') {
          slot.ready = true;
          resolve();
          this.pump();
          return;
        }
        if (m.type === 'logits') return this.onLogits(slot, m);
        const job = slot.job;
        if (!job || job.id !== m.id) return;
        slot.job = undefined;
        if (m.type === 'done') this.succeed(job, { nifti: m.nifti, summary: m.summary, queueMs: job.started! - job.queued });
        else if (m.user) this.fail(job, new HttpError(422, m.message));
        else {
          const e = new Error(`volume segmentation failed: ${m.message}`);
          if (m.stack) e.stack = `${e.message}\n(volume worker) ${m.stack}`;
          this.fail(job, e);
        }
        this.pump();
      });
      slot.worker.on('error', (e) => {
        slot.failure = e;
      });
      slot.worker.on('exit', (code) => {
        this.slots.delete(slot);
        const why = slot.failure ?? new Error(`volume worker exited with code ${code}`);
        if (!slot.ready) reject(new Error(`volume worker failed to start: ${why.message}`));
        if (slot.job) this.fail(slot.job, new Error(`volume worker died during a volume: ${why.message}`));
        if (this.closing) return;
        if (slot.ready) {
          this.log('error', `volume worker died (${why.message}); starting a replacement`, why);
          this.restarts++;
          this.spawn().catch((e: Error) => {
            this.log('error', e.message, e);
            if (this.slots.size === 0) for (const job of this.queue.splice(0)) this.fail(job, new Error('no volume worker is running'));
          });
        }
      });
    });
  }
}
