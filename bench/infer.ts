// Inference benchmark: MobileUtr at 256x256 on onnxruntime-node, batch-1 latency and batch-8 throughput,
// 1 and 2 threads, next to the PyTorch reference (bench/torch) measured in the same run when available.
//   npm run bench:infer -- [--device cpu|webgpu|auto] [--threads 1,2] [--iters 20] [--size 256] [--no-torch]
import { Command, Option } from 'commander';
import { createModel } from '../src/models/model.ts';
import { DEVICE_CHOICES, resolveDevice, type DeviceChoice } from '../src/runtime/device.ts';
import { NodeSession } from '../src/runtime/session.ts';
import { runTorch, torchAvailable } from './torch-reference.ts';

const opts = new Command()
  .option('--model <name>', 'model', 'mobileutr')
  .option('--size <n>', 'input size', '256')
  .option('--iters <n>', 'timed runs per setting', '20')
  .option('--threads <list>', 'comma-separated thread counts', '1,2')
  .option('--no-torch', 'skip the PyTorch reference')
  .addOption(new Option('--device <device>', 'onnxruntime-node device: cpu, webgpu or auto').choices([...DEVICE_CHOICES]).default('cpu'))
  .parse()
  .opts();

const size = Number(opts.size);
const iters = Number(opts.iters);
/** Batch-8 runs take 8x longer: a quarter as many of them. */
const runs = (batch: number) => (batch === 1 ? iters : Math.max(3, Math.round(iters / 4)));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const model = createModel(opts.model, { size });
const onnx = model.toOnnx();
const useTorch = opts.torch && torchAvailable();
const { device, note } = await resolveDevice(opts.device as DeviceChoice).catch((e: Error) => {
  console.error(`bench:infer: ${e.message}`);
  process.exit(1);
});
console.log(`${opts.model} ${size}x${size}, ${iters} timed runs per setting (median); PyTorch reference (CPU): ${useTorch ? 'yes' : 'skipped (no /usr/bin/python3 with torch)'}`);
console.log(`${note ?? `device: ${device}`}; "ours" runs there (threads: CPU threads, also for nodes WebGPU leaves to the CPU)`);
console.log('threads  batch  ours ms/batch  ours img/s  torch ms/batch  torch img/s  speed-up');

for (const threads of String(opts.threads).split(',').map(Number)) {
  const session = await NodeSession.create(onnx, { threads, device });
  for (const batch of [1, 8]) {
    const input = new Float32Array(batch * 3 * size * size).map((_, i) => Math.sin(i * 0.01));
    const feeds = { input: { data: input, dims: [batch, 3, size, size] } };
    for (let i = 0; i < 3; i++) await session.run(feeds);
    const times: number[] = [];
    for (let i = 0; i < runs(batch); i++) {
      const t = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t);
    }
    const ms = median(times);
    const torch = useTorch
      ? runTorch(['infer', '--model', opts.model, '--size', String(size), '--batch', String(batch), '--threads', String(threads), '--iters', String(runs(batch)), '--warmup', '2'])
      : undefined;
    const tms = torch?.ms_per_batch_median;
    console.log(
      [
        String(threads).padStart(7),
        String(batch).padStart(6),
        ms.toFixed(1).padStart(14),
        ((batch * 1000) / ms).toFixed(1).padStart(11),
        (tms?.toFixed(1) ?? '-').padStart(15),
        (tms ? ((batch * 1000) / tms).toFixed(1) : '-').padStart(12),
        (tms ? `${(tms / ms).toFixed(2)}x` : '-').padStart(9),
      ].join(' '),
    );
  }
  await session.release();
}
