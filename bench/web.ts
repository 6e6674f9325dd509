// In-browser inference latency: MobileUtr at 256x256, batch 1, in the built web app (onnxruntime-web, wasm SIMD) in
// headless Debian Chromium, next to onnxruntime-node for the same model and image, per thread count.
// Run: npx tsx bench/web.ts [--runs 20] [--threads 1,2] [--size 256] [--model mobileutr]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import sharp from 'sharp';
import { decodeImage } from '../src/data/image.ts';
import { createModel } from '../src/models/model.ts';
import { pixelsToTensor } from '../src/pipeline/normalize.ts';
import { NodeSession } from '../src/runtime/session.ts';
import type {} from '../web/src/page-state.ts'; // window.mobileutr, the page's state

const CHROMIUM = '/usr/bin/chromium';
const REPO = fileURLToPath(new URL('../', import.meta.url));
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WARMUP = 3;

const opts = new Command()
  .option('--model <name>', 'model', 'mobileutr')
  .option('--size <n>', 'input size', '256')
  .option('--runs <n>', 'timed runs per setting (median reported)', '20')
  .option('--threads <list>', 'comma-separated thread counts', '1,2')
  .parse()
  .opts<{ model: string; size: string; runs: string; threads: string }>();

const size = Number(opts.size);
const runs = Number(opts.runs);
const threadCounts = opts.threads.split(',').map(Number);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

if (!existsSync(CHROMIUM)) {
  console.error(`bench:web needs Debian chromium at ${CHROMIUM} (apt-get install -y chromium)`);
  process.exit(1);
}

/** A grey test image at the model size (no resize on either side): a BUSI scan when the shared data is present. */
async function sampleImage(): Promise<Buffer> {
  const busi = join(REPO, '../shared/datasets/busi/images/benign_010.png');
  if (existsSync(busi)) return sharp(busi).resize(size, size, { fit: 'cover' }).greyscale().png().toBuffer();
  const pixels = new Uint8Array(size * size).map((_, i) => 80 + ((i * 37) % 101));
  return sharp(pixels, { raw: { width: size, height: size, channels: 1 } }).blur(2).png().toBuffer();
}

const dir = await mkdtemp(join(tmpdir(), 'mobileutr-bench-web-'));
const model = createModel(opts.model, { size });
const onnx = model.toOnnx();
const png = await sampleImage();
await writeFile(join(dir, 'model.onnx'), onnx);
await writeFile(join(dir, 'image.png'), png);

// Node
const decoded = await decodeImage(png);
const input = pixelsToTensor(decoded.pixels, size, size, decoded.channels, model.options.inChannels);
const node = new Map<number, number[]>();
for (const threads of threadCounts) {
  const session = await NodeSession.create(onnx, { threads });
  const feeds = { input: { data: input, dims: [1, model.options.inChannels, size, size] } };
  for (let i = 0; i < WARMUP; i++) await session.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
  }
  node.set(threads, times);
  await session.release();
}

// Browser: the production build served by `vite preview` (cross-origin isolated, so wasm threads are available)
const { build, preview } = await import('vite');
const configFile = join(REPO, 'vite.config.ts');
const outDir = join(dir, 'dist');
await build({ configFile, logLevel: 'error', build: { outDir, emptyOutDir: true } });
const server = await preview({ configFile, logLevel: 'error', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
const url = server.resolvedUrls?.local[0];
if (!url) throw new Error('vite preview gave no URL');
const { chromium } = await import('playwright-core');
const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
const web = new Map<number, { times: number[]; label: string }>();
try {
  for (const threads of threadCounts) {
    const page = await browser.newPage(); // a fresh page per setting: the wasm thread count is fixed once loaded
    await page.goto(`${url}?backend=wasm&demo=0&threads=${threads}`);
    await page.waitForFunction(() => window.mobileutr?.state === 'idle');
    await page.setInputFiles('#model-input', join(dir, 'model.onnx'));
    await page.waitForFunction(() => window.mobileutr.model !== undefined || window.mobileutr.state === 'error', null, { timeout: 60_000 });
    await page.setInputFiles('#image-input', join(dir, 'image.png'));
    await page.waitForFunction(() => window.mobileutr.state === 'done' || window.mobileutr.state === 'error', null, { timeout: 60_000 });
    const out = await page.evaluate(
      async ([warmup, n]) => {
        const s = window.mobileutr;
        if (s.state !== 'done' || !s.bench || !s.model) throw new Error(s.error ?? 'page not ready');
        await s.bench(warmup);
        return { times: await s.bench(n), runtime: s.model.runtime };
      },
      [WARMUP, runs] as const,
    );
    if (out.runtime.threads !== threads) console.warn(`note: the page runs ${out.runtime.threads} wasm threads for a request of ${threads}`);
    web.set(threads, { times: out.times, label: `wasm SIMD, ${out.runtime.threads} thr` });
    await page.close();
  }
} finally {
  await browser.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
}

const chromiumVersion = execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
console.log(`${opts.model} ${size}x${size}, batch 1, median of ${runs} runs after ${WARMUP} warm-up runs (session.run only)`);
console.log(`node ${process.version}, onnxruntime-node/web 1.30, ${chromiumVersion}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'})`);
console.log('');
console.log('| threads | onnxruntime-node ms (p90) | onnxruntime-web in Chromium ms (p90) | web / node |');
console.log('| ---: | ---: | ---: | ---: |');
for (const threads of threadCounts) {
  const n = node.get(threads)!;
  const w = web.get(threads)!;
  const nm = median(n);
  const wm = median(w.times);
  console.log(`| ${threads} | ${nm.toFixed(1)} (${quantile(n, 0.9).toFixed(1)}) | ${wm.toFixed(1)} (${quantile(w.times, 0.9).toFixed(1)}) ${w.label} | ${(wm / nm).toFixed(2)}x |`);
}
