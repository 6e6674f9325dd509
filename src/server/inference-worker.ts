// One ONNX Runtime session in a worker thread. onnxruntime-node's run() blocks the thread it is called on, so the
// service runs the network here and keeps its event loop free for HTTP (health checks, 503s, uploads).
import { parentPort, workerData } from 'node:worker_threads';
import { UserError } from '../errors.ts';
import { NodeSession } from '../runtime/session.ts';
import type { SessionOptions } from '../runtime/types.ts';

export interface WorkerInit {
  onnx: Uint8Array;
  session: SessionOptions;
}

/** main -> worker */
export interface RunRequest {
  id: number;
  batch: Float32Array;
  dims: number[];
}

/** worker -> main */
export type WorkerMessage =
  | { type: 'ready' }
  /** The session could not be created; `user`: a UserError (e.g. --device webgpu without a usable GPU). */
  | { type: 'failed'; user: boolean; message: string }
  | { type: 'result'; id: number; logits: Float32Array }
  | { type: 'error'; id: number; message: string; stack?: string };

const port = parentPort!;
const init = workerData as WorkerInit;
const session = await NodeSession.create(init.onnx, init.session).catch((e: Error) => {
  port.postMessage({ type: 'failed', user: e instanceof UserError, message: e?.message ?? String(e) } satisfies WorkerMessage);
  throw e;
});
port.on('message', (m: RunRequest) => {
  session.run({ input: { data: m.batch, dims: m.dims } }, ['logits']).then(
    (out) => {
      const logits = out.logits!.data.slice(); // own buffer, so it can be transferred
      port.postMessage({ type: 'result', id: m.id, logits } satisfies WorkerMessage, [logits.buffer]);
    },
    (e: Error) => port.postMessage({ type: 'error', id: m.id, message: e?.message ?? String(e), stack: e?.stack } satisfies WorkerMessage),
  );
});
port.postMessage({ type: 'ready' } satisfies WorkerMessage);
