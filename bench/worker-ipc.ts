// What running the network in a worker process costs over running it in this process: the same model and
// threads, batch by batch, through `WorkerPool.logits` (IPC with 'advanced' serialization: the Float32Array batch
// goes over, the logits come back) and through `Segmenter.logits` (no hop). The difference is the transfer and
// the scheduling of one batch, but on a busy machine it drowns in the noise of the runs themselves, so the transfer
// is also timed alone: a round trip of the same arrays to an echo child over the same kind of channel (spawn with
// an IPC pipe and 'advanced' serialization; the child answers each batch with a logits-sized array), and a v8
// serialize/deserialize round in this process.
//
//   npx tsx bench/worker-ipc.ts [--size 256] [--iters 20] [--batches 1,4]
import { spawn } from 'node:child_process';
import { deserialize, serialize } from 'node:v8';
import { Command } from 'commander';
import { createModel } from '../src/models/model.ts';
import { Segmenter } from '../src/pipeline/segmenter.ts';
import { WorkerPool } from '../src/server/worker-pool.ts';

const opts = new Command().option('--size <n>', 'input size', '256').option('--iters <n>', 'timed batches per setting', '20').option('--batches <list>', 'batch sizes', '1,4').parse().opts();
const size = Number(opts.size);
const iters = Number(opts.iters);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const model = createModel('mobileutr', { size });
const { inChannels, classes } = model.options;
const inProcess = await Segmenter.create(model, { threads: 1 });
const pool = await WorkerPool.create(model, { workers: 1, session: { threads: 1 } });
console.log(`mobileutr ${size}x${size}, 1 ONNX Runtime thread, ${iters} batches per setting (median ms)`);
// the echo child: answers {batch, outLength} with a Float32Array of outLength (allocated once per length)
const echo = spawn(
  process.execPath,
  ['-e', "const out = new Map(); process.on('message', (m) => { if (!out.has(m.outLength)) out.set(m.outLength, new Float32Array(m.outLength).fill(0.5)); process.send({ logits: out.get(m.outLength) }); });"],
  { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' },
);
const roundTrip = (batch: Float32Array, outLength: number) =>
  new Promise<Float32Array>((resolve) => {
    echo.once('message', (m: { logits: Float32Array }) => resolve(m.logits));
    echo.send({ batch, outLength });
  });
console.log('batch  MB in+out  in-process  worker process  difference  IPC round trip alone  serialize+deserialize (in+out)');
try {
  for (const n of String(opts.batches).split(',').map(Number)) {
    const batch = new Float32Array(n * inChannels * size * size).map((_, i) => Math.sin(i * 0.01));
    // interleaved (one in-process batch, one worker batch, ...) so that load from elsewhere hits both alike
    const local: number[] = [];
    const remote: number[] = [];
    const timed = async (run: () => Promise<Float32Array>, into: number[]) => {
      const t = performance.now();
      await run();
      into.push(performance.now() - t);
    };
    for (let i = -1; i < iters; i++) {
      await timed(() => inProcess.logits(batch, n), local);
      await timed(() => pool.logits(batch.slice(), n), remote); // (a fresh array: a pool may take it over)
    }
    local.shift(); // warm-up
    remote.shift();
    const out = new Float32Array(n * classes * size * size);
    const ipc: number[] = [];
    for (let i = -1; i < iters * 5; i++) {
      const t = performance.now();
      const back = await roundTrip(batch, out.length);
      if (back.length !== out.length) throw new Error('echo: wrong length');
      if (i >= 0) ipc.push(performance.now() - t);
    }
    const clone: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t = performance.now();
      deserialize(serialize({ batch }));
      deserialize(serialize({ logits: out }));
      clone.push(performance.now() - t);
    }
    const mb = ((batch.byteLength + out.byteLength) / 2 ** 20).toFixed(2);
    console.log(`${String(n).padStart(5)}  ${mb.padStart(9)}  ${median(local).toFixed(1).padStart(10)}  ${median(remote).toFixed(1).padStart(14)}  ${(median(remote) - median(local)).toFixed(1).padStart(10)}  ${median(ipc).toFixed(2).padStart(20)}  ${median(clone).toFixed(2).padStart(6)}`);
  }
} finally {
  await pool.close();
  await inProcess.release();
  echo.disconnect();
}
