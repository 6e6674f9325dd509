// Training in the browser vs onnxruntime-node, same run: MobileUtr on the bundled BUSI sample (31 training images)
// with the paper's protocol at --size (default 128) and batch 8, for --epochs epochs, in the built training page
// (headless Debian Chromium, Web Worker, onnxruntime-web wasm; and WebGPU where Chromium offers an adapter), then the
// CLI's own loop (runTraining, onnxruntime-node) on the same data, settings and threads. Images/s are those of the
// last epoch (the first includes session creation). Last line:
//   web-train: <x> img/s (node <y> img/s), loss <a> -> <b>
// Run: npm run bench:web-train [-- --epochs 3 --size 128 --webgpu]
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import type { Page } from 'playwright-core';
import { PAPER_DEFAULTS } from '../src/train/config.ts';
import { runTraining } from '../src/train/loop.ts';
import type { EpochRecord } from '../src/train/curves.ts';
import type {} from '../web/src/train-app.ts'; // window.mobileutrTrain

const CHROMIUM = '/usr/bin/chromium';
const REPO = fileURLToPath(new URL('../', import.meta.url));
const SAMPLE = join(REPO, 'samples/busi-mini');
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WEBGPU_ARGS = [...LAUNCH_ARGS.filter((a) => a !== '--disable-gpu'), '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--use-webgpu-adapter=swiftshader'];

const opts = new Command()
  .option('--size <n>', 'input size', '128')
  .option('--epochs <n>', 'epochs (the last one is timed)', '3')
  .option('--batch <n>', 'batch', '8')
  .option('--webgpu', "also train on Chromium's WebGPU (a software adapter here: SwiftShader)")
  .parse()
  .opts<{ size: string; epochs: string; batch: string; webgpu?: boolean }>();

if (!existsSync(CHROMIUM)) {
  console.error(`bench:web-train needs Debian chromium at ${CHROMIUM} (apt-get install -y chromium)`);
  process.exit(1);
}

const threads = Math.min(4, cpus().length);
const dir = await mkdtemp(join(tmpdir(), 'mobileutr-bench-web-train-'));
const { build, preview } = await import('vite');
const configFile = join(REPO, 'vite.config.ts');
const outDir = join(dir, 'dist');
await build({ configFile, logLevel: 'error', build: { outDir, emptyOutDir: true } });
const server = await preview({ configFile, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
const url = `${server.resolvedUrls!.local[0]!}train.html`;
const { chromium } = await import('playwright-core');

interface Result {
  device: string;
  epochs: EpochRecord[];
}

async function browserRun(args: string[], backend: 'wasm' | 'webgpu'): Promise<Result> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args });
  try {
    const page: Page = await browser.newPage();
    await page.goto(`${url}?backend=${backend}`);
    await page.setInputFiles('#data-input', SAMPLE);
    await page.waitForFunction(() => window.mobileutrTrain.state === 'ready', null, { timeout: 120_000 });
    await page.selectOption('#size', opts.size);
    await page.fill('#epochs', opts.epochs);
    await page.fill('#batch', opts.batch);
    await page.click('#start');
    await page.waitForFunction(() => ['finished', 'error'].includes(window.mobileutrTrain.state), null, { timeout: 3_600_000 });
    const s = await page.evaluate(() => ({ errors: window.mobileutrTrain.errors, epochs: window.mobileutrTrain.epochs, device: document.getElementById('device-status')!.textContent ?? '' }));
    if (s.errors.length) throw new Error(`the page failed: ${s.errors.join('; ')}`);
    return { device: s.device.replace(/^Device: /, ''), epochs: s.epochs };
  } finally {
    await browser.close();
  }
}

const last = (r: Result) => r.epochs.at(-1)!;
const line = (name: string, r: Result) =>
  console.log(`${name.padEnd(22)} ${last(r).images_per_s.toFixed(2).padStart(6)} img/s  train loss ${r.epochs[0]!.train_loss.toFixed(4)} -> ${last(r).train_loss.toFixed(4)}  (${r.device})`);

try {
  console.log(`MobileUtr ${opts.size}x${opts.size}, batch ${opts.batch}, ${opts.epochs} epochs on samples/busi-mini (31 training images); img/s of the last epoch; ${threads} threads`);
  const wasm = await browserRun(LAUNCH_ARGS, 'wasm');
  line('browser (wasm)', wasm);
  if (opts.webgpu) line('browser (WebGPU)', await browserRun(WEBGPU_ARGS, 'webgpu'));
  const out = join(dir, 'node-run');
  const config = { ...PAPER_DEFAULTS, data: SAMPLE, classes: 1, size: Number(opts.size), epochs: Number(opts.epochs), batch: Number(opts.batch), threads, workers: 1 };
  const node = await runTraining(out, config);
  const nodeResult: Result = { device: `onnxruntime-node CPU, ${threads} threads`, epochs: node.position.history };
  line('node (CLI loop)', nodeResult);
  console.log(
    `web-train: ${last(wasm).images_per_s.toFixed(2)} img/s (node ${last(nodeResult).images_per_s.toFixed(2)} img/s), loss ${wasm.epochs[0]!.train_loss.toFixed(4)} -> ${last(wasm).train_loss.toFixed(4)}`,
  );
} finally {
  await server.close();
  await rm(dir, { recursive: true, force: true });
}
