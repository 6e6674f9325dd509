// UNeXt and CMUNeXt in the browser (web/train.html on onnxruntime-web, headless Chromium): one training step on the
// PyTorch fixture batch gives onnxruntime-node's loss and gradients (UNeXt's shift needs Pad, Slice and Concat in
// ORT Web), and the page trains the model picked in its Model select, whose downloads name it and load in Node.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainingStepFeeds } from '../../src/autodiff/step-feeds.ts';
import { parseSafetensors } from '../../src/io/safetensors-format.ts';
import { loadModel } from '../../src/models/load.ts';
import { sgd } from '../../src/optim/optimizers.ts';
import { Segmenter } from '../../src/pipeline/segmenter.ts';
import { NodeSession } from '../../src/runtime/session.ts';
import { WEB_TRAINING_OPTIMIZATION } from '../../src/web/train/run.ts';
import { fixtureModel, itWithFixtures, readBundle } from '../support/fixtures.ts';
import { settleReluTies, trainingGraphWithReluNudges, zeroNudges } from '../support/nudges.ts';
import type {} from '../../web/src/train-app.ts'; // window.mobileutrTrain

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SAMPLE = join(REPO, 'samples/busi-mini');
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

if (!hasChromium) console.warn(`test/browser/baselines skipped: ${CHROMIUM} is absent (install Debian chromium: apt-get install -y chromium)`);

const b64 = (a: Float32Array | Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const f32 = (text: string) => {
  const bytes = Buffer.from(text, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};
/** max |a - b| / max |b|. */
function relative(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

async function openTrainPage(browser: Browser, url: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(url);
  await page.waitForFunction(() => window.mobileutrTrain !== undefined);
  return page;
}

(hasChromium ? describe : describe.skip)('UNeXt and CMUNeXt in Chromium (onnxruntime-web)', () => {
  let dir = '';
  let url = '';
  let closeServer: () => Promise<void> = async () => {};
  let browser: Browser;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mobileutr-web-baselines-'));
    const { build, preview } = await import('vite');
    const configFile = join(REPO, 'vite.config.ts');
    const outDir = join(dir, 'dist');
    await build({ configFile, logLevel: 'error', build: { outDir, emptyOutDir: true } });
    const server = await preview({ configFile, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
    closeServer = () => server.close();
    url = `${server.resolvedUrls!.local[0]!}train.html`;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await closeServer();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // Per-tensor ||a − b|| / ||b||. MobileUtr's browser test holds 1e-3, and so does UNeXt. CMUNeXt's gradients in wasm
  // are ~3e-3 from onnxruntime-node's upstream of Up2 (worst ~6e-3), with the loss equal: the first tensor off is
  // Up2.up.2.bias (3.6e-3), a BatchNorm bias gradient, i.e. the plain sum of dy over 8192 elements with heavy
  // cancellation, while the same layer's weight gradient (the sum of dy·x̂) agrees to 4e-5; the BatchNorm input
  // gradient uses that sum, so every tensor upstream carries it. That is float32 summation order in ORT Web's
  // reductions (the fixtures README: naive accumulation lands 1e-3 to 1e-2 off after a train-mode BatchNorm backward),
  // not a different network: a porting bug moves these gradients by 0.5 or more (GELU tanh 0.54, align_corners 1.9).
  const WEB_GRAD_TOLERANCE = { unext: 1e-3, cmunext: 1e-2 } as const;

  for (const name of ['unext', 'cmunext'] as const) {
    // the page's wasm trainer against onnxruntime-node (both vs PyTorch: test/train/baselines-parity.test.ts)
    itWithFixtures(`${name}: one training step on the fixture batch (train64) gives onnxruntime-node's loss and gradients`, async () => {
      const model = fixtureModel(64, name);
      const batch = readBundle(`${name}_seed0.train64`).tensors;
      // ReLU inputs within float noise of 0 are pushed to one side first: either runtime may route them differently
      const { graph, nudges } = trainingGraphWithReluNudges(model, { batch: 2, optimizer: sgd({ momentum: 0.9, weightDecay: 1e-4 }), gradOutputs: true });
      const feeds = trainingStepFeeds(graph, model, { data: batch.get('input')!.data, dims: batch.get('input')!.shape }, { data: batch.get('target')!.data, dims: batch.get('target')!.shape });
      zeroNudges(nudges, feeds);
      const session = await NodeSession.create(graph.onnx, { threads: 2, memoryPattern: false });
      const moved = settleReluTies(nudges, await session.run(feeds), feeds);
      const node = await session.run(feeds);
      await session.release();

      const page = await openTrainPage(browser, url);
      const pageFeeds = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, { data: b64(t.data), dims: [...t.dims] }]));
      const web = await page.evaluate(([m, f, l]) => window.mobileutrTrain.runOnnx(m, f, 'wasm', l), [b64(graph.onnx), pageFeeds, WEB_TRAINING_OPTIMIZATION] as const);
      await page.context().close();
      // zero-gradient biases (their values are noise) are left out
      const l2 = (a: Float32Array, b: Float32Array) => {
        let d = 0;
        let n = 0;
        for (let i = 0; i < b.length; i++) {
          d += (a[i]! - b[i]!) ** 2;
          n += b[i]! ** 2;
        }
        return Math.sqrt(d / (n || 1));
      };
      const ref = (p: string) => batch.get(`grad.${p}`)!.data;
      const noise = (p: string) => ref(p).every((g) => Math.abs(g) < 1e-6);
      const errs = graph.params
        .filter((p) => !noise(p.input))
        .map((p) => ({ name: p.input, err: l2(f32(web.outputs[`grad.${p.input}`]!), node[`grad.${p.input}`]!.data) }))
        .sort((a, b) => b.err - a.err);
      const lossErr = relative(f32(web.outputs.loss!), node.loss!.data);
      console.log(`${name} train64 step in Chromium (${web.backend}) vs onnxruntime-node, ${moved} ReLU near-ties settled: loss ${lossErr.toExponential(2)}, worst gradient ${errs[0]!.name} ${errs[0]!.err.toExponential(2)} (${errs.length} tensors)`);
      expect(errs.length).toBeGreaterThan(graph.params.length - 11);
      expect(lossErr).toBeLessThan(1e-5);
      expect(errs.filter((e) => e.err > WEB_GRAD_TOLERANCE[name])).toEqual([]);
    }, 300_000);
  }

  it('the Model select trains UNeXt; its best.safetensors names unext and its model.onnx gives the Node logits', async () => {
    const page = await openTrainPage(browser, url);
    await page.setInputFiles('#data-input', SAMPLE);
    await page.waitForFunction(() => !['idle', 'checking'].includes(window.mobileutrTrain.state), null, { timeout: 60_000 });
    await page.selectOption('#model', 'unext');
    await page.selectOption('#size', '64');
    await page.fill('#epochs', '1');
    await page.fill('#batch', '8');
    await page.click('#start');
    await page.waitForFunction(() => ['finished', 'paused', 'error'].includes(window.mobileutrTrain.state) && window.mobileutrTrain.stopped !== undefined, null, { timeout: 300_000 });
    const s = await page.evaluate(() => ({ state: window.mobileutrTrain.state, errors: window.mobileutrTrain.errors, steps: window.mobileutrTrain.steps.length }));
    expect(s.errors).toEqual([]);
    expect(s.state).toBe('finished');
    expect(s.steps).toBe(4); // 31 training images, batch 8
    const file = async (n: 'best.safetensors' | 'model.onnx') =>
      Buffer.from(await page.evaluate(async (f) => {
        const bytes = await window.mobileutrTrain.file(f);
        let bin = '';
        for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
        return btoa(bin);
      }, n), 'base64');
    const weights = await file('best.safetensors');
    expect(parseSafetensors(weights).metadata).toMatchObject({ model: 'unext', size: '64', trained_in: 'browser' });
    const weightsFile = join(dir, 'unext.safetensors');
    await writeFile(weightsFile, weights);
    const model = await loadModel({ weights: weightsFile });
    expect(model.name).toBe('unext');
    const input = new Float32Array(2 * 3 * 64 * 64).map((_, i) => Math.sin(i * 0.37));
    const segmenter = await Segmenter.create(model);
    const nodeLogits = await segmenter.logits(input, 2);
    await segmenter.release();
    const onnx = await file('model.onnx');
    const web = await page.evaluate(([m, x]) => window.mobileutrTrain.runOnnx(m, { input: { data: x, dims: [2, 3, 64, 64] } }), [onnx.toString('base64'), b64(input)] as const);
    await page.context().close();
    const err = relative(f32(web.outputs.logits!), nodeLogits);
    console.log(`UNeXt trained in the page: model.onnx in Chromium vs best.safetensors in Node, logits ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
  }, 400_000);
});
