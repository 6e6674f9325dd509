// bench:queue: images/s of the BullMQ job queue (`queue submit` + `worker --until-empty`) with 1 and 2 workers,
// against single-process `mobileutr predict` over the same images, measured in the same run on this machine. Each
// figure is the wall time of the processes that do the work, start-up (tsx, ONNX Runtime, model) included for
// both; the submit is timed apart. Target (issue 15): at most 10% overhead at 1 worker. The outputs are checked to
// be byte-identical to predict's. Uses a throw-away redis-server (Debian's package) on a free loopback port.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { createModel } from '../src/models/model.ts';
import { saveWeights } from '../src/models/weights.ts';
import { startRedis } from '../scripts/redis-server.ts';
import { sampleImages } from '../scripts/sample-images.ts';

const opts = new Command()
  .option('--images <n>', 'images to segment', '120')
  .option('--size <n>', 'model input size', '256')
  .option('--threads <n>', 'ONNX Runtime threads per process (predict and each worker)', '1')
  .parse()
  .opts<{ images: string; size: string; threads: string }>();
const N = Number(opts.images);
const BIN = new URL('../bin/mobileutr.js', import.meta.url).pathname;

/** Runs `mobileutr ...args`; resolves with its wall time in seconds, rejects with its output on failure. */
function timed(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve((performance.now() - t) / 1000) : reject(new Error(`mobileutr ${args.join(' ')} exited ${code}:\n${out}`))));
  });
}

const work = await mkdtemp(join(tmpdir(), 'mobileutr-bench-queue-'));
const redis = await startRedis();
try {
  const input = join(work, 'in');
  const names = await sampleImages(input, N);
  const weights = join(work, 'w.safetensors');
  await saveWeights(createModel('mobileutr', { size: Number(opts.size), seed: 3 }), weights);
  const threads = ['--threads', opts.threads];
  console.log(`${N} images (72-${72 + 16 * Math.floor((N - 1) / 44)} px wide), mobileutr at ${opts.size} px, ${opts.threads} ONNX Runtime thread(s) per process`);

  const ref = join(work, 'predict');
  const predictS = await timed(['predict', '--input', input, '--out', ref, '--weights', weights, ...threads]);

  const runs: { workers: number; submitS: number; seconds: number }[] = [];
  for (const workers of [1, 2]) {
    const queue = `bench${workers}`;
    const out = join(work, `queue${workers}`);
    const submitS = await timed(['queue', 'submit', '--redis', redis.url, '--queue', queue, '--input', input, '--out', out, '--weights', weights]);
    const t = performance.now();
    await Promise.all(Array.from({ length: workers }, () => timed(['worker', '--redis', redis.url, '--queue', queue, '--until-empty', ...threads])));
    runs.push({ workers, submitS, seconds: (performance.now() - t) / 1000 });
    const differ = names.filter((n) => !readFileSync(join(out, n)).equals(readFileSync(join(ref, n))));
    const extra = readdirSync(out).length - names.length;
    if (differ.length || extra) throw new Error(`queue outputs with ${workers} worker(s): ${differ.length} differ from predict's, ${extra} extra files`);
  }

  const rate = (s: number) => N / s;
  console.log('\nrun                          wall s   images/s   vs predict');
  console.log(`predict (1 process)         ${predictS.toFixed(2).padStart(7)}  ${rate(predictS).toFixed(2).padStart(9)}        1.00x`);
  for (const r of runs)
    console.log(
      `queue, ${r.workers} worker${r.workers > 1 ? 's' : ' '}             ${r.seconds.toFixed(2).padStart(7)}  ${rate(r.seconds).toFixed(2).padStart(9)}   ${(rate(r.seconds) / rate(predictS)).toFixed(2).padStart(9)}x   (submit ${r.submitS.toFixed(2)} s apart)`,
    );
  const overhead = runs[0]!.seconds / predictS - 1;
  console.log(`\noverhead of the queue at 1 worker: ${(overhead * 100).toFixed(1)}% (target <= 10%): ${overhead <= 0.1 ? 'ok' : 'OVER'}`);
  console.log('outputs of both queue runs byte-identical to predict\'s');
} finally {
  await redis.stop();
  rmSync(work, { recursive: true, force: true });
}
