// One ONNX Runtime session in a child process (forked by worker-pool.ts, IPC with 'advanced' serialization, so
// typed arrays travel as themselves). A native crash inside ONNX Runtime (SIGSEGV, abort) ends only this process:
// the service fails the batch it was running and starts another one. onnxruntime-node's run() blocks the thread it
// is called on, so the service's own event loop stays free for HTTP either way.
import { existsSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { NodeSession } from '../runtime/session.ts';
import type { SessionOptions } from '../runtime/types.ts';

/** Test hooks (set only by tests, through ServerOptions.workerTestHooks; never from the command line). */
export interface WorkerTestHooks {
  /** The process kills itself with SIGSEGV at start, before its session loads, while this file exists. */
  crashAtStartWhile?: string;
  /**
   * Each run waits, before it starts, for as long as this file exists (checked every 10 ms): a test holds the batch
   * in flight, kills the process under it, and removes the file to let the runs of the replacement go.
   */
  holdRunWhile?: string;
}

/** main -> worker, the first message */
export interface WorkerInit {
  type: 'init';
  onnx: Uint8Array;
  session: SessionOptions;
  hooks?: WorkerTestHooks;
}

/** main -> worker */
export type ToWorker = WorkerInit | { type: 'run'; id: number; batch: Float32Array; dims: number[] } | { type: 'stop' };

/** worker -> main */
export type WorkerMessage =
  | { type: 'ready' }
  /** The session could not be created; `user`: a UserError (e.g. --device webgpu without a usable GPU). */
  | { type: 'failed'; user: boolean; message: string }
  | { type: 'result'; id: number; logits: Float32Array }
  | { type: 'error'; id: number; message: string; stack?: string };

const send = (m: WorkerMessage) => process.send!(m);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!process.send) {
  console.error('mobileutr: inference-worker is started by `mobileutr serve`, not on its own');
  process.exit(1);
}
// the service went away (closed, killed, crashed): nothing is left to answer to; a run in progress is abandoned
process.on('disconnect', () => process.exit(0));
// Ctrl-C in a terminal (and systemd's control-group stop) signals the whole process group: the worker must not die
// under the batch it runs while the service finishes its requests; the service stops it (a 'stop' message, or its
// IPC channel closing), and kills it if it does not go
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => undefined);

let session: NodeSession | undefined;
let hooks: WorkerTestHooks = {};
let runs = Promise.resolve();

process.on('message', (m: ToWorker) => {
  if (m.type === 'init') void init(m);
  else if (m.type === 'run') runs = runs.then(() => run(m));
  else if (m.type === 'stop')
    void runs.then(async () => {
      await session?.release().catch(() => {});
      process.disconnect();
    });
});

async function init(m: WorkerInit): Promise<void> {
  hooks = m.hooks ?? {};
  if (hooks.crashAtStartWhile && existsSync(hooks.crashAtStartWhile)) process.kill(process.pid, 'SIGSEGV');
  try {
    session = await NodeSession.create(m.onnx, m.session);
  } catch (e) {
    send({ type: 'failed', user: e instanceof UserError, message: (e as Error)?.message ?? String(e) });
    process.disconnect();
    return;
  }
  send({ type: 'ready' });
}

async function run(m: { id: number; batch: Float32Array; dims: number[] }): Promise<void> {
  try {
    if (hooks.holdRunWhile) while (existsSync(hooks.holdRunWhile)) await sleep(10);
    const out = await session!.run({ input: { data: m.batch, dims: m.dims } }, ['logits']);
    send({ type: 'result', id: m.id, logits: out.logits!.data });
  } catch (e) {
    send({ type: 'error', id: m.id, message: (e as Error)?.message ?? String(e), stack: (e as Error)?.stack });
  }
}
