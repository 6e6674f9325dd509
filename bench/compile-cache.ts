// What the compile cache (MOBILEUTR_CACHE_DIR, src/runtime/compile-cache.ts) buys and costs: one MobileUtr trainer,
// each case in a fresh process under the CLI's malloc settings (src/cli/allocator.ts): without the cache, a miss
// (the cache filled), a hit (the cache read). Prints the first step (session open + step), a later step, the
// losses (they must agree to the bit) and the peak RSS, with ratios against the run without the cache.
//   npm run bench:compile-cache -- [--size 256] [--batch 8] [--threads 2]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ALLOCATOR_MARK, TRAINING_MALLOC_ENV } from '../src/cli/allocator.ts';

const { values } = parseArgs({ options: { size: { type: 'string', default: '256' }, batch: { type: 'string', default: '8' }, threads: { type: 'string', default: '2' }, child: { type: 'boolean', default: false } } });
const size = Number(values.size);
const batch = Number(values.batch);
const threads = Number(values.threads);

interface Measured {
  firstMs: number;
  laterMs: number;
  losses: number[];
  peakMb: number;
}

async function child(): Promise<void> {
  const { createModel } = await import('../src/models/model.ts');
  const { createTrainer } = await import('../src/train/trainer.ts');
  const model = createModel('mobileutr', { size, seed: 1 });
  const trainer = createTrainer(model, { threads, dropPathRate: 0 });
  const hw = size * size;
  const images = { data: Float32Array.from({ length: batch * 3 * hw }, (_, i) => Math.sin(i * 0.001)), dims: [batch, 3, size, size] };
  const targets = { data: Float32Array.from({ length: batch * hw }, (_, i) => (i % 7 < 3 ? 1 : 0)), dims: [batch, 1, size, size] };
  const times: number[] = [];
  const losses: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    losses.push((await trainer.step(images, targets, 0.01)).loss);
    times.push(performance.now() - t);
  }
  const out: Measured = { firstMs: times[0]!, laterMs: Math.min(times[1]!, times[2]!), losses, peakMb: process.resourceUsage().maxRSS / 1024 };
  console.log(JSON.stringify(out));
}

function run(cacheDir: string | undefined): Measured {
  const env: NodeJS.ProcessEnv = { ...process.env, ...TRAINING_MALLOC_ENV, [ALLOCATOR_MARK]: '1' };
  delete env.MOBILEUTR_CACHE_DIR;
  if (cacheDir) env.MOBILEUTR_CACHE_DIR = cacheDir;
  const script = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, '--child', '--size', String(size), '--batch', String(batch), '--threads', String(threads)], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Measured;
}

if (values.child) await child();
else {
  const dir = mkdtempSync(join(tmpdir(), 'mobileutr-bench-cache-'));
  try {
    console.log(`MobileUtr trainer at ${size}x${size}, batch ${batch}, ${threads} threads; each case in a fresh process`);
    const off = run(undefined);
    const miss = run(dir);
    const hit = run(dir);
    const row = (name: string, m: Measured) =>
      `| ${name} | ${(m.firstMs / 1000).toFixed(2)} s (${(m.firstMs / off.firstMs).toFixed(2)}x) | ${(m.laterMs / 1000).toFixed(2)} s | ${m.peakMb.toFixed(0)} MB (${(m.peakMb / off.peakMb).toFixed(2)}x) | ${m.losses.every((l, i) => Object.is(l, off.losses[i])) ? 'same bits' : 'DIFFERENT'} |`;
    console.log('| case | first step (open + step) | later step | peak RSS | losses vs no cache |');
    console.log('| --- | --- | --- | --- | --- |');
    console.log(row('no cache', off));
    console.log(row('cache miss', miss));
    console.log(row('cache hit', hit));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
