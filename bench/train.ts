// Training throughput of MobileUtr (batch 8, 256x256) with 1 and 2 threads, against PyTorch's CPU training.
//   npx tsx bench/train.ts [--model mobileutr] [--size 256] [--batch 8] [--threads 1,2] [--iters 5] [--warmup 1] [--no-torch]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { createModel } from '../src/models/model.ts';
import { createTrainer } from '../src/train/trainer.ts';
import { Rng } from '../src/util/rng.ts';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'mobileutr' },
    size: { type: 'string', default: '256' },
    batch: { type: 'string', default: '8' },
    threads: { type: 'string', default: '1,2' },
    iters: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    'no-torch': { type: 'boolean', default: false },
  },
});
const size = Number(a.size);
const batch = Number(a.batch);
const iters = Number(a.iters);
const warmup = Number(a.warmup);
const threadList = a.threads!.split(',').map(Number);

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1]!;
const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

/** The same fixed random input and binary target as bench/torch/bench.py (not the same numbers: a different RNG). */
function data(classes: number) {
  const rng = new Rng(41);
  const images = Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal());
  const targets = Float32Array.from({ length: batch * classes * size * size }, () => (rng.next() > 0.5 ? 1 : 0));
  return { images: { data: images, dims: [batch, 3, size, size] }, targets: { data: targets, dims: [batch, classes, size, size] } };
}

async function ours(threads: number) {
  const model = createModel(a.model!, { size });
  const trainer = createTrainer(model, { threads });
  const { images, targets } = data(model.options.classes);
  const t0 = performance.now();
  const first = await trainer.step(images, targets, 0.01);
  const firstMs = performance.now() - t0;
  for (let i = 1; i < warmup; i++) await trainer.step(images, targets, 0.01);
  const times: number[] = [];
  let last = first;
  for (let i = 0; i < iters; i++) {
    const s = performance.now();
    last = await trainer.step(images, targets, 0.01);
    times.push(performance.now() - s);
  }
  await trainer.release();
  const ms = median(times);
  return { ms, ips: (batch * 1000) / ms, firstMs, loss: [first.loss, last.loss], gradNorm: last.gradNorm };
}

function torch(threads: number): { ips: number; ms: number; rss: number } | string {
  if (a['no-torch']) return 'skipped (--no-torch)';
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
  } catch {
    return 'skipped (/usr/bin/python3 cannot import torch)';
  }
  const args = ['bench/torch/bench.py', 'train', '--model', a.model!, '--size', String(size), '--batch', String(batch), '--threads', String(threads), '--iters', String(iters), '--warmup', String(warmup)];
  try {
    const line = execFileSync('/usr/bin/python3', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()!;
    const r = JSON.parse(line) as { images_per_s: number; ms_per_step_median: number; peak_rss_mb: number };
    return { ips: r.images_per_s, ms: r.ms_per_step_median, rss: r.peak_rss_mb };
  } catch (e) {
    return `skipped (bench/torch/bench.py failed: ${(e as Error).message.split('\n')[0]})`;
  }
}

console.log(`training ${a.model} batch ${batch} ${size}x${size}, median of ${iters} steps after ${warmup} warm-up`);
for (const threads of threadList) {
  const r = await ours(threads);
  console.log(
    `ours  threads ${threads}: ${r.ips.toFixed(2)} img/s (${r.ms.toFixed(0)} ms/step; first step incl. graph build + session ${(r.firstMs / 1000).toFixed(1)} s; ` +
      `loss ${r.loss[0]!.toFixed(4)} -> ${r.loss[1]!.toFixed(4)}; peak RSS so far ${peakRssMb().toFixed(0)} MB)`,
  );
  const t = torch(threads);
  if (typeof t === 'string') console.log(`torch threads ${threads}: comparison ${t}`);
  else console.log(`torch threads ${threads}: ${t.ips.toFixed(2)} img/s (${t.ms.toFixed(0)} ms/step, peak RSS ${t.rss.toFixed(0)} MB) -> ratio ours/torch ${(r.ips / t.ips).toFixed(2)}x`);
}
console.log(`peak RSS (this process) ${peakRssMb().toFixed(0)} MB`);
