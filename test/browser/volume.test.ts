// Volumes in the browser app, in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core):
// open a synthetic CT (.nii.gz on an oblique, permuted, left-handed grid), check the axial view is RAS+ with
// anterior up, scroll with the slider and the wheel, change window/level, segment a slice and the whole volume
// with a small model that carries its volume metadata, download the label NIfTI and compare it with the source
// grid and with the Node reference prediction; broken files each give one message. Skipped without Chromium.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeNifti } from '../../src/data/volume/nifti-read.ts';
import type { SegmentationModel } from '../../src/models/model.ts';
import type {} from '../../web/src/page-state.ts'; // window.mobileutr, the page's state
import { balancedModel, brokenFiles, CT_DIMS, META, onnxWithVolumeMeta, referencePrediction, writeCt, type Reference } from './volume-fixtures.ts';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const OUTPUT = join(REPO, 'test-output');
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

if (!hasChromium) console.warn(`test/browser/volume skipped: ${CHROMIUM} is absent (install Debian chromium: apt-get install -y chromium)`);

/** Centroid of the displayed pixels brighter than `above` (x, y as fractions of the width and height). */
async function brightCentroid(page: Page, above = 250): Promise<{ x: number; y: number; n: number }> {
  const d = await page.evaluate(() => window.mobileutr.volume?.displayed());
  if (!d) throw new Error('no slice displayed');
  let sx = 0;
  let sy = 0;
  let n = 0;
  d.grey.forEach((v, i) => {
    if (v < above) return;
    sx += i % d.width;
    sy += Math.floor(i / d.width);
    n++;
  });
  return { x: sx / n / (d.width - 1), y: sy / n / (d.height - 1), n };
}

async function openVolume(page: Page, file: string, name: string): Promise<void> {
  await page.setInputFiles('#image-input', file);
  await page.waitForFunction((n) => window.mobileutr.volume?.name === n || window.mobileutr.state === 'error', name, { timeout: 60_000 });
}

describe.skipIf(!hasChromium)(hasChromium ? 'browser app: volumes (headless Chromium)' : `browser app: volumes — SKIPPED: ${CHROMIUM} is absent`, () => {
  let dir = '';
  let url = '';
  let closeServer: () => Promise<void> = async () => {};
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  let ctPath = '';
  let ctGz: Buffer;
  let model: SegmentationModel;
  let modelFile = '';
  let reference: Reference;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mobileutr-webvol-'));
    ctPath = join(dir, 'ct.nii.gz');
    ctGz = writeCt(ctPath);
    model = await balancedModel(ctPath, META);
    modelFile = join(dir, 'model.onnx');
    await writeFile(modelFile, onnxWithVolumeMeta(model, META));
    reference = await referencePrediction(ctPath, model, META);

    const { build, preview } = await import('vite');
    const configFile = join(REPO, 'vite.config.ts');
    const outDir = join(dir, 'dist');
    await build({ configFile, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
    const server = await preview({ configFile, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port: 0 } });
    closeServer = () => server.close();
    url = server.resolvedUrls?.local[0] ?? '';
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}?demo=0`);
    await page.waitForFunction(() => window.mobileutr && window.mobileutr.state !== 'starting');
  });

  afterAll(async () => {
    await browser?.close();
    await closeServer();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('opens the .nii.gz and shows axial slices in RAS+ with anterior up, whatever the file order', async () => {
    await openVolume(page, ctPath, 'ct.nii.gz');
    const v = await page.evaluate(() => window.mobileutr.volume!);
    expect(v.sourceDims).toEqual(CT_DIMS);
    expect(v.orientation).toBe('LSP'); // i -> L, j -> S, k -> P (turned 12°)
    expect(v.dims).toEqual([40, 34, 14]); // canonical R, A, S
    expect(v.spacing.map((s) => Number(s.toFixed(4)))).toEqual([0.8, 1.2, 2.5]);
    expect(v.slices).toBe(14);
    expect(v.slice).toBe(7);
    expect(v.preset).toBe('ct-abdomen'); // air in the file: a CT, abdomen window
    await expect(page.locator('#volume-window-value').innerText()).resolves.toBe('L 40 / W 400');
    await expect(page.locator('#volume-slice-value').innerText()).resolves.toBe('8 / 14');
    // the sphere lies right of and anterior to the centre: right half (RAS+), upper half (anterior up)
    const c = await brightCentroid(page);
    expect(c.n).toBeGreaterThan(20);
    expect(c.x).toBeGreaterThan(0.55);
    expect(c.y).toBeLessThan(0.45);
    await page.check('#volume-radiological');
    const r = await brightCentroid(page);
    expect(r.x).toBeLessThan(0.45); // radiological: the patient's right on the viewer's left
    expect(r.y).toBeCloseTo(c.y, 6);
    await page.uncheck('#volume-radiological');
    expect(await page.locator('#volume-view').isVisible()).toBe(true);
    expect(await page.locator('#view').isVisible()).toBe(false);
  });

  it('scrolls with the slider and the mouse wheel, and changes window/level with presets and numbers', async () => {
    await page.locator('#volume-slice').fill('3');
    expect(await page.evaluate(() => window.mobileutr.volume!.slice)).toBe(3);
    await expect(page.locator('#volume-slice-value').innerText()).resolves.toBe('4 / 14');
    const box = (await page.locator('#volume-view').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, 120);
    await page.waitForFunction(() => window.mobileutr.volume!.slice === 4);
    await page.mouse.wheel(0, -120);
    await page.mouse.wheel(0, -120);
    await page.waitForFunction(() => window.mobileutr.volume!.slice === 2);
    await page.mouse.wheel(0, -120);
    await page.mouse.wheel(0, -120);
    await page.mouse.wheel(0, -120); // stops at the first slice
    await page.waitForFunction(() => window.mobileutr.volume!.slice === 0);

    await page.selectOption('#volume-preset', 'ct-bone');
    expect(await page.evaluate(() => window.mobileutr.volume!.window)).toEqual({ level: 400, width: 1800 });
    await expect(page.locator('#volume-window-value').innerText()).resolves.toBe('L 400 / W 1800');
    await page.selectOption('#volume-preset', 'auto');
    const auto = await page.evaluate(() => window.mobileutr.volume!.window);
    expect(auto.width).toBeGreaterThan(1000); // air (-1000) to the sphere (300)
    await page.locator('#volume-width').fill('250');
    await page.locator('#volume-level').fill('60');
    expect(await page.evaluate(() => window.mobileutr.volume!)).toMatchObject({ window: { level: 60, width: 250 }, preset: 'custom' });
    await expect(page.locator('#volume-window-value').innerText()).resolves.toBe('L 60 / W 250');
    await page.selectOption('#volume-preset', 'ct-abdomen');
    await page.locator('#volume-slice').fill('7');
  });

  it('segments the current slice, then the whole volume, like the Node reference; downloads the label NIfTI on the source grid', async () => {
    await page.setInputFiles('#model-input', modelFile);
    await page.waitForFunction(() => window.mobileutr.model?.file === 'model.onnx' || window.mobileutr.state === 'error', null, { timeout: 60_000 });
    expect(await page.evaluate(() => window.mobileutr.volume!.input)).toEqual({ source: 'metadata', kind: 'volume', intensity: 'CT: HU clipped to −125…275', context: 1, axis: 'axial' });
    await expect(page.locator('#volume-model-status').innerText()).resolves.toMatch(/From the model: CT.*axial slices, context ±1/);
    expect(await page.locator('#volume-input').isDisabled()).toBe(true);

    await page.click('#segment-slice');
    await page.waitForFunction(() => window.mobileutr.state === 'done' || window.mobileutr.state === 'error', null, { timeout: 60_000 });
    const one = await page.evaluate(() => window.mobileutr.volume!.result!);
    expect(one).toMatchObject({ segmented: 1, slices: 14, complete: false, classValues: [0, 3, 7], classNames: ['background', 'liver', 'lesion'] });
    expect(await page.locator('#volume-download').isDisabled()).toBe(true);

    await page.click('#segment-volume');
    await page.waitForFunction(() => window.mobileutr.volume?.result?.complete || window.mobileutr.state === 'error', null, { timeout: 120_000 });
    const all = await page.evaluate(() => ({ result: window.mobileutr.volume!.result!, state: window.mobileutr.state, error: window.mobileutr.error }));
    expect(all.error).toBeUndefined();
    expect(all.result).toMatchObject({ segmented: 14, complete: true });
    console.log(`volume ${CT_DIMS.join('×')}: 14 axial slices, network ${all.result.inferenceMs.toFixed(0)} ms, total ${all.result.totalMs.toFixed(0)} ms in Chromium (wasm)`);
    // legend: one row per foreground class, names from the model's metadata, sizes in mL
    const legend = await page.locator('#volume-legend li').allInnerTexts();
    expect(legend.map((t) => t.replace(/\s+/g, ' ').trim())).toEqual([expect.stringMatching(/^liver \d+\.\d mL$/), expect.stringMatching(/^lesion \d+\.\d mL$/)]);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#volume-download')]);
    expect(download.suggestedFilename()).toBe('ct_labels.nii.gz');
    const bytes = await readFile(await download.path());
    const labels = decodeNifti(bytes, 'ct_labels.nii.gz');
    const source = decodeNifti(ctGz, 'ct.nii.gz');
    expect(labels.grid).toEqual(source.grid); // dims, pixdim, qform/sform codes and parameters, srow
    expect(labels.affine).toEqual(source.affine);
    expect(labels.datatype).toBe('uint8');
    const values = new Set(labels.data);
    expect([...values].every((x) => META.classValues.includes(x))).toBe(true);
    expect(values.size).toBe(3);
    // the same labels as slices.ts + onnxruntime-node, except where the best two Node logits are within 1e-4
    let differing = 0;
    let tied = 0;
    labels.data.forEach((x, i) => {
      if (x === reference.labels[i]) return;
      if (reference.ties[i]) tied++;
      else differing++;
    });
    console.log(`browser vs Node reference: ${labels.data.length - differing - tied}/${labels.data.length} voxels equal, ${tied} differ at ties, ${differing} otherwise`);
    expect(differing).toBe(0);

    await page.locator('#opacity').fill('55');
    await mkdir(OUTPUT, { recursive: true });
    await page.screenshot({ path: join(OUTPUT, 'web-volume.png'), fullPage: true });
  });

  it('shows one clear message for a truncated, 4-D, RGB or bomb file, and keeps the open volume', async () => {
    for (const f of brokenFiles(dir, ctGz)) {
      const path = join(dir, f.name);
      await writeFile(path, f.bytes);
      await page.setInputFiles('#image-input', path);
      await page.waitForFunction((name) => window.mobileutr.state === 'error' && (window.mobileutr.error ?? '').startsWith(name), f.name, { timeout: 30_000 });
      await expect(page.locator('#message').innerText(), f.name).resolves.toMatch(f.message);
      await expect(page.locator('#image-status').innerText()).resolves.toMatch(f.message);
      expect(await page.locator('#message').getAttribute('data-kind')).toBe('error');
    }
    expect(await page.evaluate(() => window.mobileutr.volume?.name)).toBe('ct.nii.gz');
  });

  it('lets the user choose the preprocessing for a model without volume metadata, and then predicts as with it', async () => {
    const plain = join(dir, 'plain.onnx');
    await writeFile(plain, onnxWithVolumeMeta(model, undefined));
    await page.setInputFiles('#model-input', plain);
    // (the page's state is still 'error' from the broken files: wait for the model itself)
    await page.waitForFunction(() => window.mobileutr.model?.file === 'plain.onnx', null, { timeout: 60_000 });
    await expect(page.locator('#volume-model-status').innerText()).resolves.toMatch(/no volume metadata.*choose how slices are prepared/);
    expect(await page.locator('#volume-input').isVisible()).toBe(true);
    expect(await page.evaluate(() => window.mobileutr.volume!.input)).toMatchObject({ source: 'choice', kind: 'image' });

    // an image model's view of the slice: the window as an 8-bit picture; classes named from the output count
    await page.click('#segment-slice');
    await page.waitForFunction(() => window.mobileutr.volume?.result?.modelSource === 'plain.onnx' || window.mobileutr.state === 'error', null, { timeout: 60_000 });
    expect(await page.evaluate(() => window.mobileutr.volume!.result)).toMatchObject({ segmented: 1, classValues: [0, 1, 2], classNames: ['background', 'class 1', 'class 2'] });
    expect(await page.locator('#volume-legend li .name').allInnerTexts()).toEqual(['class 1', 'class 2']);

    // a volume model needs matching channels: CT without context gives 1 channel, the model takes 3
    await page.selectOption('#volume-input', 'ct');
    await page.selectOption('#volume-context', '0');
    await expect(page.locator('#volume-model-status').innerText()).resolves.toMatch(/Cannot segment: the model takes 3 input channels/);
    expect(await page.locator('#segment-volume').isDisabled()).toBe(true);
    await page.selectOption('#volume-context', '1');
    expect(await page.locator('#segment-volume').isDisabled()).toBe(false);
    await page.click('#segment-volume');
    await page.waitForFunction(() => window.mobileutr.volume?.result?.complete || window.mobileutr.state === 'error', null, { timeout: 120_000 });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#volume-download')]);
    const labels = decodeNifti(await readFile(await download.path()), 'ct_labels.nii.gz');
    const index = new Map(META.classValues.map((v, k) => [v, k]));
    let differing = 0;
    labels.data.forEach((x, i) => {
      if (x !== index.get(reference.labels[i]!) && !reference.ties[i]) differing++;
    });
    expect(differing).toBe(0);
    expect(errors).toEqual([]);
  });
});
