import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.ts';
import type { SegmentationModel } from '../models/model.ts';
import type { SessionOptions } from '../runtime/types.ts';
import { HttpError } from './errors.ts';
import { workerEntry } from './worker-entry.ts';
import type { ToWorker, WorkerMessage, WorkerTestHooks } from './inference-worker.ts';

/** Runs the network on a normalised batch [n, inChannels, size, size]; `Segmenter` satisfies it (in-thread). */
export interface BatchRunner {
  logits(batch: Float32Array, n: number): Promise<Float32Array>;
}

const ENTRY = fileURLToPath(workerEntry('inference-worker', import.meta.url));

/** How replacements of dead workers are spaced. */
export interface RestartPolicy {
  /** Wait before the first restart after a crash; doubled for each further crash in a row (default 100 ms). */
  baseMs: number;
  /** The longest wait between restarts (default 30 s). */
  maxMs: number;
  /** A worker that ran a batch, or stayed up this long, is healthy: its crash count starts again (default 30 s). */
  stableMs: number;
  /** Crashes in a row (no healthy worker between them) after which a worker counts as crash-looping (default 3). */
  loopAfter: number;
}

export const RESTART_DEFAULTS: RestartPolicy = { baseMs: 100, maxMs: 30_000, stableMs: 30_000, loopAfter: 3 };

export interface PoolOptions {
  workers: number;
  session?: SessionOptions;
  log?: PoolLog;
  restart?: Partial<RestartPolicy>;
  /** Test hooks passed to the worker processes (see WorkerTestHooks). */
  testHooks?: WorkerTestHooks;
}

/**
 * The batch in flight was lost because its worker process died: 503 + Retry-After, the client may send it again
 * (the service starts another worker).
 */
export class WorkerLostError extends HttpError {
  constructor(message: string, retryAfterS: number) {
    super(503, message, { 'retry-after': String(retryAfterS) });
    this.name = 'WorkerLostError';
  }
}

interface Job {
  id: number;
  batch: Float32Array;
  dims: number[];
  resolve: (logits: Float32Array) => void;
  reject: (e: Error) => void;
}

interface Slot {
  /** 0 .. workers-1: a replacement takes the place of the dead worker. */
  index: number;
  state: 'starting' | 'ready' | 'waiting' | 'stopped';
  child?: ChildProcess;
  pid?: number;
  job?: Job;
  /** Crashes in a row without a healthy period between them. */
  crashes: number;
  /** When the next start is due (state 'waiting'). */
  nextStart?: number;
  timer?: NodeJS.Timeout;
  /** The session could not be created because of the user's options (UserError in the worker). */
  userFailure?: string;
  /** Why its session could not be created. */
  failure?: string;
  /** Settles the first start (create()). */
  started?: { resolve: () => void; reject: (e: Error) => void };
}

export type PoolLog = (level: 'info' | 'warn' | 'error', message: string, err?: Error) => void;

/** What /healthz shows of the pool. */
export interface PoolHealth {
  alive: number;
  configured: number;
  restarts: number;
  /** Workers starting now, and waiting for their next start after a crash. */
  starting: number;
  waiting: number;
  /** Workers not running that crashed `loopAfter` times or more in a row. */
  crash_looping: number;
  /** The soonest next start of a waiting worker, ms from now (null: none waiting). */
  next_start_ms: number | null;
}

/**
 * N worker processes (node:child_process fork), each with its own ONNX Runtime session of the model; one batch per
 * worker at a time. A worker that dies (a native crash, a kill) fails only the batch it was running, with
 * WorkerLostError (503); batches not yet sent wait and run on the other workers or on the replacement. Replacements
 * start after an exponential backoff (RestartPolicy), so a worker that crashes at every start does not loop at
 * full speed.
 */
export class WorkerPool implements BatchRunner {
  private readonly slots: Slot[] = [];
  private readonly pending: Job[] = [];
  private readonly policy: RestartPolicy;
  private nextId = 1;
  private closing = false;
  /** Workers started again after they died (each start attempt counts). */
  restarts = 0;

  private constructor(
    private readonly onnx: Uint8Array,
    private readonly session: SessionOptions,
    private readonly inputDims: readonly number[],
    private readonly log: PoolLog,
    restart: Partial<RestartPolicy> | undefined,
    private readonly hooks: WorkerTestHooks | undefined,
  ) {
    this.policy = { ...RESTART_DEFAULTS, ...restart };
  }

  /** Starts `workers` processes and waits until every session has loaded; any failure at this point is thrown. */
  static async create(model: SegmentationModel, o: PoolOptions): Promise<WorkerPool> {
    const { inChannels, size } = model.options;
    const pool = new WorkerPool(model.toOnnx(), o.session ?? {}, [inChannels, size, size], o.log ?? (() => {}), o.restart, o.testHooks);
    const started = await Promise.allSettled(
      Array.from({ length: o.workers }, (_, index) => {
        const slot: Slot = { index, state: 'starting', crashes: 0 };
        pool.slots.push(slot);
        return new Promise<void>((resolve, reject) => {
          slot.started = { resolve, reject };
          pool.start(slot);
        });
      }),
    );
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) {
      await pool.close();
      throw (failed as PromiseRejectedResult).reason;
    }
    return pool;
  }

  /** Workers ready to run. */
  get alive(): number {
    return this.slots.filter((s) => s.state === 'ready').length;
  }

  /** Process ids of the workers running now (starting or ready). */
  get pids(): number[] {
    return this.slots.filter((s) => s.pid !== undefined && (s.state === 'ready' || s.state === 'starting')).map((s) => s.pid!);
  }

  get health(): PoolHealth {
    const now = Date.now();
    const waiting = this.slots.filter((s) => s.state === 'waiting');
    return {
      alive: this.alive,
      configured: this.slots.length,
      restarts: this.restarts,
      starting: this.slots.filter((s) => s.state === 'starting').length,
      waiting: waiting.length,
      crash_looping: this.slots.filter((s) => s.state !== 'ready' && s.crashes >= this.policy.loopAfter).length,
      next_start_ms: waiting.length ? Math.max(0, Math.min(...waiting.map((s) => s.nextStart! - now))) : null,
    };
  }

  /** No worker is ready and every one has crashed `loopAfter` times in a row: the pool cannot serve for now. */
  get down(): boolean {
    return this.slots.length > 0 && this.slots.every((s) => s.state !== 'ready' && s.crashes >= this.policy.loopAfter);
  }

  logits(batch: Float32Array, n: number): Promise<Float32Array> {
    if (this.closing) return Promise.reject(new Error('inference pool is closed'));
    if (this.down) return Promise.reject(this.downError());
    return new Promise((resolve, reject) => {
      this.pending.push({ id: this.nextId++, batch, dims: [n, ...this.inputDims], resolve, reject });
      this.pump();
    });
  }

  /**
   * Stops the workers once their current batches are done; batches not started yet are rejected, and workers
   * waiting for a restart are not started.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.pending.splice(0)) job.reject(new Error('inference pool is closed'));
    await Promise.all(
      this.slots.map(async (s) => {
        clearTimeout(s.timer);
        const child = s.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        // ('close': its last messages, the result of its batch, have been read by then)
        const exited = new Promise<void>((r) => child.once('close', () => r()));
        // the worker finishes its batch, releases its session and exits; one that does not is killed
        if (child.connected) child.send({ type: 'stop' } satisfies ToWorker, () => {});
        else child.kill('SIGKILL');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  private downError(): WorkerLostError {
    const { next_start_ms: next, starting } = this.health;
    const when = starting > 0 || next === null ? 'a worker is starting now' : `the next start is in ${Math.ceil(next / 1000)} s`;
    return new WorkerLostError(
      `no inference worker is running: the workers crashed ${Math.min(...this.slots.map((s) => s.crashes))} times in a row; ${when}, retry later`,
      Math.max(1, Math.ceil((starting > 0 || next === null ? 1000 : next) / 1000)),
    );
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.pending.length === 0) return;
      if (slot.state !== 'ready' || slot.job || !slot.child?.connected) continue;
      const job = this.pending.shift()!;
      slot.job = job;
      // (structured clone over the IPC channel, 'advanced' serialization: the Float32Array arrives as one)
      const child = slot.child;
      child.send({ type: 'run', id: job.id, batch: job.batch, dims: job.dims } satisfies ToWorker, (e: Error | null) => {
        // the channel broke under the batch: the worker cannot be used; its batch fails as in a crash
        if (e && slot.child === child && slot.job === job) child.kill('SIGKILL');
      });
    }
  }

  private start(slot: Slot): void {
    slot.state = 'starting';
    slot.userFailure = slot.failure = undefined;
    slot.nextStart = undefined;
    let child: ChildProcess;
    try {
      // no execArgv of the service (a test runner's or debugger's flags); the .mjs shim registers tsx when it is needed
      child = fork(ENTRY, [], { serialization: 'advanced', execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    } catch (e) {
      this.died(slot, undefined, `could not start a process (${(e as Error).message})`);
      return;
    }
    slot.child = child;
    slot.pid = child.pid;
    child.on('error', (e) => {
      // a fork that failed (no pid) gets no 'close'; other errors (a send on a closed channel) come with one
      if (child.pid === undefined && slot.child === child) this.died(slot, child, `could not start a process (${e.message})`);
    });
    child.on('message', (m: WorkerMessage) => this.message(slot, child, m));
    // 'close', not 'exit': the messages the worker sent before it died (a result) have been read by then
    child.on('close', (code, signal) => {
      if (slot.child !== child) return;
      const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
      this.died(slot, child, slot.failure ? `${slot.failure}; ${how}` : how);
    });
    if (child.pid !== undefined)
      child.send({ type: 'init', onnx: this.onnx, session: this.session, ...(this.hooks ? { hooks: this.hooks } : {}) } satisfies ToWorker, () => {});
  }

  private message(slot: Slot, child: ChildProcess, m: WorkerMessage): void {
    if (slot.child !== child) return;
    if (m.type === 'ready') {
      slot.state = 'ready';
      this.log('info', `inference worker ${slot.index} ready (pid ${child.pid})`);
      // a worker that stays up this long is healthy, even with no batch to run
      clearTimeout(slot.timer);
      slot.timer = setTimeout(() => (slot.crashes = 0), this.policy.stableMs);
      slot.timer.unref();
      slot.started?.resolve();
      slot.started = undefined;
      this.pump();
      return;
    }
    if (m.type === 'failed') {
      slot.failure = m.message;
      if (m.user) slot.userFailure = m.message;
      return;
    }
    const job = slot.job;
    if (!job || job.id !== m.id) return;
    slot.job = undefined;
    if (m.type === 'result') {
      slot.crashes = 0;
      job.resolve(m.logits);
    } else {
      const e = new Error(`inference failed: ${m.message}`);
      if (m.stack) e.stack = `${e.message}\n(worker) ${m.stack}`;
      job.reject(e);
    }
    this.pump();
  }

  /** The worker process is gone: fail its batch, and start a replacement after the backoff. */
  private died(slot: Slot, child: ChildProcess | undefined, why: string): void {
    if (slot.state === 'stopped' || slot.state === 'waiting') return;
    const wasReady = slot.state === 'ready';
    clearTimeout(slot.timer);
    slot.child = undefined;
    slot.pid = undefined;
    child?.removeAllListeners('message');
    if (slot.started) {
      // the first start (create): stop with the reason, the service does not come up
      slot.state = 'stopped';
      slot.started.reject(slot.userFailure !== undefined ? new UserError(slot.userFailure) : new Error(`inference worker failed to start: ${why}`));
      slot.started = undefined;
      return;
    }
    if (this.closing) {
      slot.state = 'stopped';
      slot.job?.reject(new Error(`inference worker stopped during a run: ${why}`));
      slot.job = undefined;
      return;
    }
    slot.crashes++;
    const delay = Math.min(this.policy.maxMs, this.policy.baseMs * 2 ** Math.min(30, slot.crashes - 1));
    const retryAfter = Math.max(1, Math.ceil(delay / 1000));
    const job = slot.job;
    slot.job = undefined;
    const lost = job ? `; the batch of ${job.dims[0]} it was running fails with 503` : '';
    const looping = slot.crashes >= this.policy.loopAfter ? ` (crash-looping: ${slot.crashes} crashes in a row)` : '';
    this.log(
      'error',
      `inference worker ${slot.index}${child?.pid !== undefined ? ` (pid ${child.pid})` : ''} died ${wasReady ? '' : 'while starting '}(${why})${lost}; restarting in ${delay} ms${looping}`,
    );
    slot.state = 'waiting';
    slot.nextStart = Date.now() + delay;
    slot.timer = setTimeout(() => {
      if (this.closing) return;
      this.restarts++;
      this.start(slot);
    }, delay);
    job?.reject(new WorkerLostError(`the inference worker running this request's batch crashed (${why}); it is being restarted, retry in ${retryAfter} s`, retryAfter));
    // every worker is crash-looping: the batches waiting would only wait for their deadline
    if (this.down) for (const waiting of this.pending.splice(0)) waiting.reject(this.downError());
    this.pump();
  }
}
