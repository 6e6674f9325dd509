import type { BatchRunner } from './worker-pool.ts';

export interface BatchResult {
  /** Logits of this image alone: [classes, size, size]. */
  logits: Float32Array;
  /** Time between submit and the start of its batch. */
  queueMs: number;
  /** Time of the whole batch run. */
  inferenceMs: number;
  /** Images in the batch this image ran in. */
  batchSize: number;
}

interface Job {
  input: Float32Array;
  submitted: number;
  resolve: (r: BatchResult) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export interface BatcherStats {
  /** Images waiting for a batch. */
  waiting: number;
  /** Batches running now. */
  running: number;
  /** Batches run so far and the images in them. */
  batches: number;
  images: number;
  /** Largest batch so far. */
  maxBatchSize: number;
  /** Moving average of a batch run, ms. */
  avgBatchMs: number;
}

/**
 * Collects preprocessed images and runs them as batches: at most `concurrency` batches at once, each with up to
 * `maxBatch` images. Whatever queued up while the runs were busy goes into the next batch, so batching costs no
 * added latency when the service is idle and grows with load.
 */
export class Batcher {
  private readonly queue: Job[] = [];
  private running = 0;
  private batches = 0;
  private images = 0;
  private maxBatchSize = 0;
  private avgBatchMs = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly runner: BatchRunner,
    private readonly o: { concurrency: number; maxBatch: number; inputLength: number; outputLength: number },
  ) {}

  /** Queues one image [inChannels, size, size]; an abort while it still waits removes it. */
  submit(input: Float32Array, signal?: AbortSignal): Promise<BatchResult> {
    if (input.length !== this.o.inputLength) return Promise.reject(new Error(`input has ${input.length} values, expected ${this.o.inputLength}`));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const job: Job = { input, submitted: performance.now(), resolve, reject, signal };
      if (signal) {
        job.onAbort = () => {
          const i = this.queue.indexOf(job);
          if (i >= 0) {
            this.queue.splice(i, 1);
            reject(signal.reason);
          }
        };
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this.dispatch();
    });
  }

  get stats(): BatcherStats {
    return {
      waiting: this.queue.length,
      running: this.running,
      batches: this.batches,
      images: this.images,
      maxBatchSize: this.maxBatchSize,
      avgBatchMs: this.avgBatchMs,
    };
  }

  /** Resolves when nothing waits and nothing runs. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private dispatch(): void {
    while (this.running < this.o.concurrency && this.queue.length > 0) {
      const jobs = this.queue.splice(0, this.o.maxBatch);
      for (const job of jobs) if (job.onAbort) job.signal!.removeEventListener('abort', job.onAbort);
      this.run(jobs);
    }
  }

  private run(jobs: Job[]): void {
    const n = jobs.length;
    const { inputLength, outputLength } = this.o;
    const batch = new Float32Array(n * inputLength);
    jobs.forEach((job, i) => batch.set(job.input, i * inputLength));
    this.running++;
    const start = performance.now();
    this.runner
      .logits(batch, n)
      .then(
        (logits) => {
          const inferenceMs = performance.now() - start;
          if (logits.length !== n * outputLength) throw new Error(`network returned ${logits.length} values for a batch of ${n}, expected ${n * outputLength}`);
          this.batches++;
          this.images += n;
          this.maxBatchSize = Math.max(this.maxBatchSize, n);
          this.avgBatchMs = this.batches === 1 ? inferenceMs : 0.8 * this.avgBatchMs + 0.2 * inferenceMs;
          jobs.forEach((job, i) =>
            job.resolve({ logits: logits.subarray(i * outputLength, (i + 1) * outputLength), queueMs: start - job.submitted, inferenceMs, batchSize: n }),
          );
        },
      )
      .catch((e: unknown) => {
        for (const job of jobs) job.reject(e);
      })
      .finally(() => {
        this.running--;
        this.dispatch();
        if (this.queue.length === 0 && this.running === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      });
  }
}
