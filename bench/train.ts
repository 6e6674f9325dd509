// Training speed: for each model configuration and thread count, in the same run,
//   - our inference forward at the training batch (the exported graph) and our training step (forward, loss,
//     backward, SGD update: one session.run), and their ratio (the target: a step costs at most 4 forwards);
//   - PyTorch's training step on the same network (bench/torch/bench.py), and ours/PyTorch;
//   - peak RSS of each side's process.
// Each measurement runs in a child process of its own, so peak RSS belongs to that configuration alone. Ours runs
// with the malloc settings that `mobileutr train` uses (src/cli/allocator.ts; MOBILEUTR_TRAINING_MALLOC=0 turns them
// off for an A/B); PyTorch with the default environment, as its users run it.
//   npm run bench:train -- [--configs mobileutr@256,mobileutr@128,mobileutr-l@256] [--batch 8] [--threads 1,2]
//                          [--iters 5] [--warmup 2] [--no-torch] [--profile] [--top 25] [--device cpu|webgpu|auto]
// --device: where our forward and training step run (onnxruntime-node; auto is resolved once, here, and printed);
// PyTorch runs on the CPU.
// --profile adds ONNX Runtime's per-node profile of the forward and of the training graph (time per op type,
// per phase and the slowest nodes), for the first configuration.
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { ALLOCATOR_MARK, needsTrainingAllocator, TRAINING_MALLOC_ENV } from '../src/cli/allocator.ts';
import { createModel } from '../src/models/model.ts';
import { DEVICE_CHOICES, resolveDevice, type Device, type DeviceChoice } from '../src/runtime/device.ts';
import { NodeSession } from '../src/runtime/session.ts';
import type { Tensor } from '../src/runtime/types.ts';
import { createTrainer } from '../src/train/trainer.ts';
import { Rng } from '../src/util/rng.ts';
import { printProfile, readProfile } from './profile.ts';
import { runTorch, torchAvailable } from './torch-reference.ts';

const opts = new Command()
  .option('--configs <list>', 'model@size, comma-separated', 'mobileutr@256,mobileutr@128,mobileutr-l@256')
  .option('--batch <n>', 'batch size', '8')
  .option('--threads <list>', 'comma-separated thread counts', '1,2')
  .option('--iters <n>', 'timed steps (median)', '5')
  .option('--warmup <n>', 'untimed steps first', '2')
  .option('--no-torch', 'skip the PyTorch reference')
  .option('--profile', 'print ONNX Runtime per-node profiles of the forward and the training step')
  .option('--top <n>', 'rows per profile table', '25')
  .addOption(new Option('--device <device>', 'onnxruntime-node device: cpu, webgpu or auto').choices([...DEVICE_CHOICES]).default('cpu'))
  .option('--child <json>', 'internal: one measurement, printed as JSON')
  .parse()
  .opts();

interface Job {
  model: string;
  size: number;
  batch: number;
  threads: number;
  iters: number;
  warmup: number;
  profile: boolean;
  top: number;
  device: Device;
}

interface Measured {
  forwardMs: number;
  stepMs: number;
  firstStepS: number;
  loss: [number, number];
  trainRssMb: number;
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1]!;
const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

async function timed(iters: number, warmup: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

/** One configuration, in this process: training first (peak RSS is read before the forward adds to it). */
async function measure(job: Job): Promise<Measured> {
  const model = createModel(job.model, { size: job.size });
  const { inChannels, classes } = model.options;
  const rng = new Rng(41);
  const images: Tensor = { data: Float32Array.from({ length: job.batch * inChannels * job.size ** 2 }, () => rng.normal()), dims: [job.batch, inChannels, job.size, job.size] };
  const targets: Tensor = { data: Float32Array.from({ length: job.batch * classes * job.size ** 2 }, () => (rng.next() > 0.5 ? 1 : 0)), dims: [job.batch, classes, job.size, job.size] };
  const trainPrefix = join(tmpdir(), `mobileutr-train-profile-${process.pid}-`);
  let profiled: NodeSession | undefined;
  const trainer = createTrainer(model, {
    threads: job.threads,
    device: job.device,
    backend: async (bytes, o) => (profiled = await NodeSession.create(bytes, { ...o, ...(job.profile ? { profilePrefix: trainPrefix } : {}) })),
  });
  const t0 = performance.now();
  const first = await trainer.step(images, targets, 0.01);
  const firstStepS = (performance.now() - t0) / 1000;
  let last = first;
  const stepMs = await timed(job.iters, Math.max(0, job.warmup - 1), async () => (last = await trainer.step(images, targets, 0.01)));
  const trainRssMb = peakRssMb();
  if (job.profile) profiled!.endProfiling();
  await trainer.release();

  const forwardPrefix = join(tmpdir(), `mobileutr-forward-profile-${process.pid}-`);
  const session = await NodeSession.create(model.toOnnx(), { threads: job.threads, device: job.device, ...(job.profile ? { profilePrefix: forwardPrefix } : {}) });
  const forwardMs = await timed(job.iters, job.warmup, () => session.run({ input: images }));
  if (job.profile) session.endProfiling();
  await session.release();
  if (job.profile) {
    const label = `${job.model} ${job.size}² batch ${job.batch}, ${job.threads} thread(s), ${job.device}`;
    printProfile(`forward (inference graph), ${label}`, readProfile(forwardPrefix, job.warmup), job.top);
    printProfile(`training step, ${label}`, readProfile(trainPrefix, job.warmup), job.top);
  }
  return { forwardMs, stepMs, firstStepS, loss: [first.loss, last.loss], trainRssMb };
}

if (opts.child) {
  const r = await measure(JSON.parse(opts.child) as Job);
  console.log(`RESULT ${JSON.stringify(r)}`);
  process.exit(0);
}

function child(job: Job): Measured {
  const script = fileURLToPath(import.meta.url);
  const env = needsTrainingAllocator() ? { ...process.env, ...TRAINING_MALLOC_ENV, [ALLOCATOR_MARK]: '1' } : process.env;
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, '--child', JSON.stringify(job)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env });
  if (r.status !== 0) throw new Error(`measurement ${JSON.stringify(job)} failed (exit ${r.status})`);
  const lines = r.stdout.trim().split('\n');
  for (const l of lines) if (!l.startsWith('RESULT ')) console.log(l);
  return JSON.parse(lines.find((l) => l.startsWith('RESULT '))!.slice(7)) as Measured;
}

const batch = Number(opts.batch);
const useTorch = opts.torch && torchAvailable();
const { device, note } = await resolveDevice(opts.device as DeviceChoice).catch((e: Error) => {
  console.error(`bench:train: ${e.message}`);
  process.exit(1);
});
const configs = String(opts.configs).split(',').map((c) => {
  const [model, size] = c.split('@');
  return { model: model!, size: Number(size ?? 256) };
});
console.log(`training step vs inference forward, batch ${batch}, median of ${opts.iters} after ${opts.warmup} warm-up; PyTorch (CPU): ${useTorch ? 'yes' : 'skipped'}`);
console.log(`${note ?? `device: ${device}`}; "ours" runs there (thr: CPU threads, also for nodes WebGPU leaves to the CPU)`);
console.log(`ours: ${needsTrainingAllocator() ? `glibc malloc as in \`mobileutr train\` (${Object.entries(TRAINING_MALLOC_ENV).map(([k, v]) => `${k}=${v}`).join(' ')})` : 'malloc as the environment sets it'}`);
const header = ['config', 'thr', 'fwd ms', 'step ms', 'step/fwd', 'ours img/s', 'torch img/s', 'ours/torch', 'RSS ours MB', 'RSS torch MB'];
const rows: string[][] = [];
configs.forEach(({ model, size }, ci) => {
  for (const threads of String(opts.threads).split(',').map(Number)) {
    const job: Job = { model, size, batch, threads, iters: Number(opts.iters), warmup: Number(opts.warmup), profile: Boolean(opts.profile) && ci === 0, top: Number(opts.top), device };
    const r = child(job);
    const torch = useTorch
      ? runTorch(['train', '--model', model, '--size', String(size), '--batch', String(batch), '--threads', String(threads), '--iters', String(job.iters), '--warmup', String(job.warmup)])
      : undefined;
    const ours = (batch * 1000) / r.stepMs;
    const row = [
      `${model}@${size}`,
      String(threads),
      r.forwardMs.toFixed(0),
      r.stepMs.toFixed(0),
      (r.stepMs / r.forwardMs).toFixed(2),
      ours.toFixed(2),
      torch ? torch.images_per_s!.toFixed(2) : '-',
      torch ? `${(ours / torch.images_per_s!).toFixed(2)}x` : '-',
      r.trainRssMb.toFixed(0),
      torch ? torch.peak_rss_mb!.toFixed(0) : '-',
    ];
    rows.push(row);
    console.log(`${row.join('  ')}   (first step incl. graph build ${r.firstStepS.toFixed(1)} s; loss ${r.loss[0].toFixed(4)} -> ${r.loss[1].toFixed(4)})`);
  }
});
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
console.log(`\n${header.map((h, i) => h.padStart(widths[i]!)).join('  ')}`);
for (const r of rows) console.log(r.map((c, i) => c.padStart(widths[i]!)).join('  '));
