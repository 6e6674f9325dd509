// The browser app in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core): build it with
// Vite, serve the build with `vite preview` on 127.0.0.1, upload a model and an image, and compare the page's mask
// with onnxruntime-node's for the same model and image. Skipped when /usr/bin/chromium is absent.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/data/image.ts';
import { createModel } from '../../src/models/model.ts';
import { pixelsToTensor } from '../../src/pipeline/normalize.ts';
import { Segmenter } from '../../src/pipeline/segmenter.ts';
import type {} from '../../web/src/page-state.ts'; // window.mobileutr, the page's state

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const OUTPUT = join(REPO, 'test-output');
/** A real ultrasound image when the shared datasets are next to the repo; a synthetic one otherwise. */
const BUSI = join(REPO, '../shared/datasets/busi/images/benign_010.png');
const SIZE = 64;
/** Pixels whose Node logit is this close to 0 may fall on either side of the threshold (wasm vs native kernels). */
const LOGIT_TIE = 1e-4;
/** No sandbox (root in CI), no GPU, and none of Chromium's own network traffic (this machine's network is closed). */
const LAUNCH_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** The same without --disable-gpu, with WebGPU on SwiftShader (Chromium's CPU Vulkan): the WebGPU code path, no GPU. */
const WEBGPU_ARGS = [...LAUNCH_ARGS.filter((a) => a !== '--disable-gpu'), '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

if (!hasChromium) console.warn(`test/browser skipped: ${CHROMIUM} is absent (install Debian chromium: apt-get install -y chromium)`);

/** A grey "scan" as PNG: the BUSI image (cropped to its centre) or a synthetic lesion-like picture. */
async function sampleImage(width: number, height: number): Promise<Buffer> {
  if (existsSync(BUSI)) return sharp(BUSI).resize(width, height, { fit: 'cover', kernel: 'lanczos3' }).greyscale().png().toBuffer();
  const pixels = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = (x - width * 0.55) / (width * 0.22);
      const dy = (y - height * 0.45) / (height * 0.16);
      const speckle = ((x * 73856093) ^ (y * 19349663)) % 23;
      const tissue = 70 + 60 * Math.sin(y / (height / 9)) ** 2 + speckle;
      pixels[y * width + x] = dx * dx + dy * dy < 1 ? 25 + speckle : Math.min(255, tissue);
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 1 } }).blur(1).png().toBuffer();
}

/** Node logits for an image at the model size (decoded by sharp, normalised by pixelsToTensor). */
async function nodeLogits(segmenter: Segmenter, png: Buffer): Promise<Float32Array> {
  const decoded = await decodeImage(png);
  return segmenter.logits(pixelsToTensor(decoded.pixels, decoded.width, decoded.height, decoded.channels, 3), 1);
}

interface PageResult {
  mask: number[];
  logits: number[];
  width: number;
  height: number;
  inferenceMs: number;
  resized: boolean;
  runtime: { backend: string; threads: number; crossOriginIsolated: boolean; fallbackReason?: string };
}

/** Mask pixels that differ from Node's, split into ties (|Node logit| < LOGIT_TIE) and real differences. */
function compareMasks(web: PageResult, node: Uint8Array, logits: Float32Array) {
  let maxAbs = 0;
  let maxLogit = 0;
  for (let i = 0; i < logits.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(web.logits[i]! - logits[i]!));
    maxLogit = Math.max(maxLogit, Math.abs(logits[i]!));
  }
  let differing = 0;
  let tied = 0;
  for (let i = 0; i < node.length; i++) {
    if (web.mask[i] === node[i]) continue;
    if (Math.abs(logits[i]!) < LOGIT_TIE) tied++;
    else differing++;
  }
  const foreground = node.reduce((n, v) => n + (v ? 1 : 0), 0);
  const summary =
    `${node.length - differing - tied}/${node.length} mask pixels equal, ${tied} differ with |logit| < ${LOGIT_TIE}, ` +
    `${differing} differ otherwise; max |logit diff| ${maxAbs.toExponential(2)} (max |logit| ${maxLogit.toFixed(3)}); foreground ${foreground} px`;
  return { differing, tied, relative: maxAbs / maxLogit, foreground, summary };
}

/** Opens the app in a new page, with its requests and errors recorded. */
async function openApp(browser: Browser, url: string) {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => requests.push(`${r.method()} ${r.url()}`));
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => window.mobileutr && window.mobileutr.state !== 'starting' && window.mobileutr.state !== 'loading-model');
  return { page, requests, errors };
}

async function loadModel(page: Page, file: string): Promise<void> {
  await page.setInputFiles('#model-input', file);
  await page.waitForFunction(() => window.mobileutr.model?.file === 'model.onnx' || window.mobileutr.state === 'error', null, { timeout: 60_000 });
}

/** Uploads an image and waits for the overlay of this image by the uploaded model; returns the page's result. */
async function segment(page: Page, file: string, imageName: string): Promise<PageResult> {
  await page.setInputFiles('#image-input', file);
  await page.waitForFunction(
    (name) => window.mobileutr.state === 'error' || (window.mobileutr.result?.imageName === name && window.mobileutr.result.modelSource === 'model.onnx'),
    imageName,
    { timeout: 60_000 },
  );
  return page.evaluate(() => {
    const s = window.mobileutr;
    if (!s.result || !s.model) throw new Error(`page error: ${s.error ?? document.getElementById('message')?.textContent}`);
    const r = s.result;
    return {
      mask: Array.from(r.mask),
      logits: Array.from(r.logits),
      width: r.width,
      height: r.height,
      inferenceMs: r.inferenceMs,
      resized: r.resized,
      runtime: s.model.runtime,
    };
  });
}

describe.skipIf(!hasChromium)(hasChromium ? 'browser app (headless Chromium)' : `browser app — SKIPPED: ${CHROMIUM} is absent`, () => {
  let dir = '';
  let url = '';
  let closeServer: () => Promise<void> = async () => {};
  const model = createModel('mobileutr', { size: SIZE, seed: 3 });
  let segmenter: Segmenter;
  let modelFile = '';
  let image64 = '';
  let png64: Buffer;
  let chromium: typeof import('playwright-core').chromium;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mobileutr-web-'));
    const { build, preview } = await import('vite');
    const configFile = join(REPO, 'vite.config.ts');
    const outDir = join(dir, 'dist');
    await build({ configFile, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
    const server = await preview({ configFile, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
    closeServer = () => server.close();
    url = server.resolvedUrls?.local[0] ?? '';
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);

    // A freshly initialised network gives logits of one sign almost everywhere. Shift the head bias so that the
    // threshold falls at the median logit of the test image: a mask with a real boundary to compare.
    png64 = await sampleImage(SIZE, SIZE);
    image64 = join(dir, 'scan64.png');
    await writeFile(image64, png64);
    const probe = await Segmenter.create(model);
    const median = (await nodeLogits(probe, png64)).sort()[(SIZE * SIZE) / 2]!;
    await probe.release();
    model.weights.get('head.bias')![0]! -= median;
    modelFile = join(dir, 'model.onnx');
    await writeFile(modelFile, model.toOnnx());
    segmenter = await Segmenter.create(model);
    ({ chromium } = await import('playwright-core'));
  });

  afterAll(async () => {
    await closeServer();
    await segmenter?.release();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('WebAssembly backend', () => {
    let browser: Browser;
    let app: Awaited<ReturnType<typeof openApp>>;

    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
      app = await openApp(browser, url);
    });

    afterAll(async () => {
      await browser?.close();
    });

    it('says that the image stays on the machine, and loads the bundled BUSI model by default', async () => {
      await expect(app.page.locator('#privacy').innerText()).resolves.toMatch(/never leaves this machine/i);
      await app.page.waitForFunction(() => /loaded|no bundled model/i.test(document.querySelector('#model-status')?.textContent ?? ''));
      await expect(app.page.locator('#model-status').innerText()).resolves.toMatch(/^MobileUtr trained on BUSI \(bundled, breast ultrasound\) loaded \(5\.\d+ MB\)\.$/);
    });

    it('segments an image at the model size exactly like onnxruntime-node (same mask pixels)', async () => {
      const { page } = app;
      await loadModel(page, modelFile);
      const web = await segment(page, image64, 'scan64.png');
      const node = await segmenter.segment(png64);
      const cmp = compareMasks(web, node.mask, await nodeLogits(segmenter, png64));
      console.log(`browser (${web.runtime.backend}, ${web.runtime.threads} threads) vs node at ${SIZE}x${SIZE}: ${cmp.summary}; browser inference ${web.inferenceMs.toFixed(1)} ms`);

      expect(web.resized).toBe(false);
      expect([web.width, web.height]).toEqual([SIZE, SIZE]);
      expect(web.runtime.backend).toBe('wasm');
      expect(web.runtime.crossOriginIsolated).toBe(true); // COOP/COEP served: wasm threads available
      expect(web.runtime.threads).toBeGreaterThanOrEqual(1);
      expect(cmp.foreground).toBeGreaterThan(0); // a mask with a boundary, so that the comparison means something
      expect(cmp.foreground).toBeLessThan(node.mask.length);
      expect(cmp.differing).toBe(0);
      expect(cmp.relative).toBeLessThan(1e-4);
      await expect(page.locator('#stat-inference').innerText()).resolves.toMatch(/\d ms$/);

      // the downloaded PNG is the same mask, 8-bit grey
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      expect(download.suggestedFilename()).toBe('scan64-mask.png');
      const file = await readFile(await download.path());
      const meta = await sharp(file).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels, meta.depth]).toEqual(['png', SIZE, SIZE, 1, 'uchar']);
      expect(Array.from(await sharp(file).extractChannel(0).raw().toBuffer())).toEqual(web.mask);

      // the slider changes the overlay without rerunning the model
      await page.locator('#opacity').fill('60');
      await expect(page.locator('#opacity-value').innerText()).resolves.toBe('60%');
      await mkdir(OUTPUT, { recursive: true });
      await page.screenshot({ path: join(OUTPUT, 'web-overlay.png'), fullPage: true });
    });

    it('resizes other image sizes to the model and back, close to Node (canvas vs sharp resampling)', async () => {
      const png = await sampleImage(240, 180);
      const imagePath = join(dir, 'scan240x180.png');
      await writeFile(imagePath, png);
      const web = await segment(app.page, imagePath, 'scan240x180.png');
      const node = await segmenter.segment(png);
      expect(web.resized).toBe(true);
      expect([web.width, web.height]).toEqual([240, 180]);
      let equal = 0;
      for (let i = 0; i < node.mask.length; i++) if (web.mask[i] === node.mask[i]) equal++;
      const agreement = equal / node.mask.length;
      console.log(`browser vs node at 240x180 (resized to ${SIZE}x${SIZE} and back): ${(100 * agreement).toFixed(2)} % of mask pixels equal`);
      // an untrained model's logits are all close to 0, so this is a loose bound; at the model size they are exact
      expect(agreement).toBeGreaterThan(0.9);
      await app.page.screenshot({ path: join(OUTPUT, 'web-overlay-resized.png'), fullPage: true });
    });

    it('made no request outside the page origin and no uploads, and raised no page errors', () => {
      const origin = new URL(url).origin;
      const foreign = app.requests.filter((r) => !r.split(' ')[1]!.startsWith(origin) && !/ (blob|data):/.test(r));
      expect(foreign).toEqual([]);
      expect(app.requests.filter((r) => !r.startsWith('GET '))).toEqual([]);
      expect(app.errors).toEqual([]);
    });
  });

  describe('WebGPU backend (SwiftShader, Chromium’s software Vulkan)', () => {
    let browser: Browser;

    beforeAll(async () => {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: WEBGPU_ARGS });
    });

    afterAll(async () => {
      await browser?.close();
    });

    it('runs on WebGPU when asked for it and gives Node’s mask; Auto keeps WebAssembly on a software adapter', async (ctx) => {
      const app = await openApp(browser, `${url}?backend=webgpu&demo=0`);
      const adapter = await app.page.evaluate(async () => {
        const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
        return gpu ? (await gpu.requestAdapter()) !== null : false;
      });
      if (!adapter) {
        console.warn('WebGPU check skipped: this Chromium gives no WebGPU adapter with SwiftShader');
        ctx.skip();
      }
      await loadModel(app.page, modelFile);
      const web = await segment(app.page, image64, 'scan64.png');
      const node = await segmenter.segment(png64);
      const cmp = compareMasks(web, node.mask, await nodeLogits(segmenter, png64));
      console.log(`browser (webgpu/SwiftShader) vs node at ${SIZE}x${SIZE}: ${cmp.summary}; inference ${web.inferenceMs.toFixed(0)} ms`);
      expect(web.runtime.backend).toBe('webgpu');
      expect(cmp.differing).toBe(0);
      expect(cmp.relative).toBeLessThan(1e-4);
      expect(app.errors).toEqual([]);

      // 'auto' does not pick a software adapter: wasm is faster there
      await app.page.selectOption('#backend', 'auto');
      await app.page.waitForFunction(() => window.mobileutr.model?.runtime.backend === 'wasm' && window.mobileutr.state === 'done', null, { timeout: 60_000 });
      const reason = await app.page.evaluate(() => window.mobileutr.model?.runtime.fallbackReason);
      expect(reason).toMatch(/software WebGPU adapter/);
      await app.page.close();
    });
  });
});
