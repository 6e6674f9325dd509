// The package as users get it: `npm pack` of the built tree, installed into a fresh project (offline-friendly: from
// npm's cache, install scripts off as the README advises). In that project a strict TypeScript consumer imports
// 'mobileutr' and segments a bundled sample, `npx mobileutr` answers, the README's API examples type-check, and a vite
// page that imports 'mobileutr/web' builds and segments the same image in headless Chromium.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModel } from '../../src/models/model.ts';
import { Segmenter } from '../../src/pipeline/segmenter.ts';
import { consumerProject, REPO, type PackEntry } from '../../scripts/consumer-project.ts';
import { readmeExamples } from './readme-examples.ts';

const run = promisify(execFile);
const CONSUMER_FILES = fileURLToPath(new URL('./consumer/', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const ORT_WASM = ['ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'];
/** What the tarball may hold: compiled code and its sources (for the source maps), the samples the demos train on. */
const ALLOWED = /^(package\.json|README\.md|LICENSE|dist\/.+\.(js|d\.ts|js\.map|d\.ts\.map)|src\/.+\.(ts|md)|samples\/.+|pretrained\/(README\.md|[\w-]+\.safetensors))$/;
/** npm warnings: an .npmrc key it does not know (the old `onnxruntime-node-install=skip`), dependency scripts left unapproved (npm 11). */
const UNKNOWN_CONFIG = /Unknown (project|user|global|env|builtin) config|install-scripts/;

/** What test/package/consumer/web/main.ts leaves on the window. */
type PageWindow = Window & {
  result?: { mask: number[]; logits: number[]; width: number; height: number; backend: string } | { error: string };
};

let work: string;
let consumer: string;
let pack: PackEntry;
let installLog: string;

async function inConsumer(cmd: string, args: string[], timeout = 120_000) {
  const r = await run(cmd, args, { cwd: consumer, timeout, maxBuffer: 64 * 2 ** 20, env: { ...process.env, npm_config_update_notifier: 'false' } });
  return { stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'mobileutr-pack-'));
  const project = await consumerProject(work, ['typescript', '@types/node', 'vite']);
  ({ dir: consumer, pack, installLog } = project);
  console.log(`npm pack: ${pack.filename}, ${(pack.size / 1e6).toFixed(2)} MB packed, ${(pack.unpackedSize / 1e6).toFixed(2)} MB unpacked, ${pack.files.length} files`);
  await cp(CONSUMER_FILES, consumer, { recursive: true });
}, 400_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the npm tarball', () => {
  it('holds compiled ESM with declarations and maps, the sources they map to, the samples; no tests, benchmarks or shared data', () => {
    const paths = pack.files.map((f) => f.path);
    expect(paths.filter((p) => !ALLOWED.test(p))).toEqual([]);
    expect(paths.filter((p) => /(^|\/)(test|bench|fixtures|datasets|shared|\.ci|web)\//.test(p) && !p.startsWith('dist/web/') && !p.startsWith('src/web/'))).toEqual([]);
    // the bundled weights (--weights busi) are the only weights; their .onnx stays in the repository (the web app's)
    expect(paths.filter((p) => /\.test\.|\.py$|\.safetensors$|\.onnx$/.test(p))).toEqual(['pretrained/mobileutr-busi.safetensors']);
    for (const required of ['dist/index.js', 'dist/index.d.ts', 'dist/web/index.js', 'dist/web/index.d.ts', 'dist/cli/main.js', 'LICENSE']) expect(paths).toContain(required);
    // 3.8 MB of code and samples, 5.2 MB of bundled BUSI weights (float32 safetensors compress little)
    expect(pack.size).toBeLessThan(10e6);
  });
});

describe('an installed package in a fresh project', () => {
  it('installs without npm config warnings and without fetching the CUDA libraries', () => {
    expect(installLog).not.toMatch(UNKNOWN_CONFIG);
    const ortBin = join(consumer, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64');
    expect(existsSync(join(ortBin, 'onnxruntime_binding.node'))).toBe(true);
    expect(existsSync(join(ortBin, 'libonnxruntime_providers_cuda.so'))).toBe(false);
  });

  it('type-checks a strict TypeScript consumer (no skipLibCheck) that imports mobileutr, and segments a sample as the checkout does', async () => {
    await inConsumer('npx', ['tsc', '-p', '.']);
    const out = JSON.parse((await inConsumer('node', ['out/node-consumer.js'])).stdout) as {
      params: number;
      original: { width: number; height: number; mask: string; probability: string };
    };
    const reference = await Segmenter.create(createModel('mobileutr', { size: 64 }), { threads: 1 });
    const expected = await reference.segment(join(REPO, 'samples/busi-mini/images/benign_001.png'));
    await reference.release();
    expect(out.params).toBe(1_390_305);
    expect([out.original.width, out.original.height]).toEqual([expected.width, expected.height]);
    expect(Buffer.from(out.original.probability, 'base64').equals(Buffer.from(expected.probability))).toBe(true);
    expect(Buffer.from(out.original.mask, 'base64').equals(Buffer.from(expected.mask))).toBe(true);
  });

  it('runs the CLI from the compiled bin: npx mobileutr --help and info, with no npm warning', async () => {
    const help = await inConsumer('npx', ['mobileutr', '--help']);
    expect(help.stdout).toMatch(/Usage: mobileutr/);
    for (const command of ['info', 'export', 'check', 'train', 'eval', 'predict', 'serve']) expect(help.stdout).toContain(`  ${command} `);
    const info = await inConsumer('npx', ['mobileutr', 'info', '--json']);
    expect(JSON.parse(info.stdout)).toMatchObject({ model: 'mobileutr', params: 1_390_305 });
    const busi = await inConsumer('npx', ['mobileutr', 'info', '--weights', 'busi', '--json']);
    expect(JSON.parse(busi.stdout)).toMatchObject({ model: 'mobileutr', params: 1_390_305, size: 128 });
    expect(help.stderr + info.stderr).not.toMatch(/warn/i);
    const bin = await readFile(join(consumer, 'node_modules/mobileutr/dist/cli/main.js'), 'utf8');
    expect(bin.startsWith('#!/usr/bin/env node')).toBe(true);
    expect(bin).not.toMatch(/tsx/);
  });

  it("type-checks the README's TypeScript API examples against the installed package", async () => {
    const examples = readmeExamples(await readFile(join(REPO, 'README.md'), 'utf8'));
    expect(examples.length).toBeGreaterThanOrEqual(3);
    expect(examples.some((e) => e.includes("from 'mobileutr/web'"))).toBe(true);
    await mkdir(join(consumer, 'readme'), { recursive: true });
    for (const [i, code] of examples.entries()) await writeFile(join(consumer, 'readme', `example-${i + 1}.ts`), `${code}\nexport {};\n`);
    await inConsumer('npx', ['tsc', '-p', '.', '--noEmit']).catch((e: { stdout?: string }) => {
      throw new Error(`README examples do not type-check:\n${e.stdout ?? e}`);
    });
  });
});

describe.skipIf(!existsSync(CHROMIUM))('a vite page that imports mobileutr/web', () => {
  it('type-checks, builds with vite, and segments the image in Chromium as onnxruntime-node does', async () => {
    await inConsumer('npx', ['tsc', '-p', 'web']);
    // node-consumer.js (run above) wrote web/public/model.onnx and image.png at the model size, and its logits
    const node = JSON.parse((await inConsumer('node', ['out/node-consumer.js'])).stdout) as { atModelSize: { mask: string; logits: number[] } };
    await mkdir(join(consumer, 'web/public/ort'), { recursive: true });
    for (const f of ORT_WASM) await cp(join(consumer, 'node_modules/onnxruntime-web/dist', f), join(consumer, 'web/public/ort', f));
    await inConsumer('npx', ['vite', 'build', 'web', '--logLevel', 'warn']);

    const { preview } = await import('vite');
    const server = await preview({ root: join(consumer, 'web'), configFile: false, logLevel: 'warn', preview: { host: '127.0.0.1', port: 0 } });
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
    try {
      const page = await browser.newPage();
      await page.goto(server.resolvedUrls!.local[0]!);
      await page.waitForFunction(() => (window as PageWindow).result !== undefined, null, { timeout: 60_000 });
      const result = await page.evaluate(() => (window as PageWindow).result!);
      if ('error' in result) throw new Error(`page failed: ${result.error}`);
      expect(result.backend).toBe('wasm');
      expect([result.width, result.height]).toEqual([64, 64]);
      const nodeMask = Buffer.from(node.atModelSize.mask, 'base64');
      let maxDiff = 0;
      for (let i = 0; i < result.logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(result.logits[i]! - node.atModelSize.logits[i]!));
      expect(maxDiff).toBeLessThan(1e-3);
      // a mask pixel may only differ where Node's logit is within wasm-vs-native rounding of the threshold
      const differing = result.mask.filter((v, i) => v !== nodeMask[i] && Math.abs(node.atModelSize.logits[i]!) > 1e-4).length;
      expect(differing).toBe(0);
    } finally {
      await browser.close();
      await new Promise<void>((resolve) => server.httpServer.close(() => resolve()));
    }
  }, 180_000);
});
