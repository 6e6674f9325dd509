import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { createModel } from '../../src/models/model.ts';
import { saveWeights } from '../../src/models/weights.ts';
import { BIN } from '../support/bin.ts';
import { TINY } from '../support/training-cli.ts';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user-facing failure: non-zero exit, one line naming the problem, no stack trace. */
function expectCleanFailure(r: ReturnType<typeof cli>, pattern: RegExp) {
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('mobileutr CLI', () => {
  it('--help lists the commands', () => {
    const r = cli('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/info/);
    expect(r.stdout).toMatch(/export/);
  });

  it('train and compare --help name the environment variables; train keeps its optimized graph in MOBILEUTR_CACHE_DIR', () => {
    for (const command of ['train', 'compare']) expect(cli(command, '--help').stdout).toMatch(/Environment:\n {2}MOBILEUTR_CACHE_DIR .*\n[^]*MOBILEUTR_TRAINING_MALLOC/);
    const tmp = mkdtempSync(join(tmpdir(), 'mobileutr-cli-cache-'));
    const cache = join(tmp, 'cache');
    // the training itself runs in a child process (src/cli/allocator.ts): the variable must reach it
    const r = spawnSync(process.execPath, [BIN, 'train', ...TINY, '--epochs', '1', '--drop-last', '--out', join(tmp, 'run')], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, MOBILEUTR_CACHE_DIR: cache } });
    expect(r.status, r.stderr).toBe(0);
    // one graph per batch size; --drop-last leaves one
    expect(readdirSync(cache).filter((n) => n.endsWith('.ort-optimized.onnx'))).toHaveLength(1);
  });

  it('info --json reports exact parameters and MACs', () => {
    const r = cli('info', '--model', 'mobileutr', '--size', '256', '--json');
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info).toMatchObject({ model: 'mobileutr', params: 1390305, macs: 2415656960, macs_with_attention: 3246129152, size: 256 });
    expect(info.layers.length).toBeGreaterThan(10);
  });

  it('info prints a layer table for mobileutr-l', () => {
    const r = cli('info', '--model', 'mobileutr-l', '--size', '128');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/transformer_bottleneck\.3/);
    expect(r.stdout).toMatch(/parameters:\s+6,209,217/);
  });

  it('export writes a .onnx file that ONNX Runtime runs, with the given weights', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mobileutr-cli-'));
    const weights = join(dir, 'w.safetensors');
    const model = createModel('mobileutr', { size: 32, seed: 5 });
    await saveWeights(model, weights);
    const out = join(dir, 'model.onnx');
    const r = cli('export', '--weights', weights, '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/input "input" \[N,3,32,32\]/);
    const session = await ort.InferenceSession.create(out);
    const input = new Float32Array(2 * 3 * 32 * 32).map((_, i) => Math.sin(i));
    const res = await session.run({ input: new ort.Tensor('float32', input, [2, 3, 32, 32]) });
    expect(res.logits!.dims).toEqual([2, 1, 32, 32]);
    // same weights through the API give the same logits
    const direct = await ort.InferenceSession.create(model.toOnnx());
    const ref = await direct.run({ input: new ort.Tensor('float32', input, [2, 3, 32, 32]) });
    expect(Array.from(res.logits!.data as Float32Array)).toEqual(Array.from(ref.logits!.data as Float32Array));
  });

  it.each([
    [['info', '--size', '100'], /size must be a multiple of 16/],
    [['info', '--size', 'big'], /"big" is not an integer/],
    [['info', '--model', 'resnet'], /Allowed choices are mobileutr, mobileutr-l, unet/],
    [['export', '--weights', '/nonexistent/w.safetensors', '--out', '/tmp/x.onnx'], /\/nonexistent\/w.safetensors: file not found/],
    [['export'], /required option '-o, --out <file>'/],
  ])('bad input %j fails cleanly', (args, pattern) => {
    expectCleanFailure(cli(...args), pattern);
  });

  it('a corrupt weights file fails cleanly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mobileutr-cli-'));
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, Buffer.from('this is not a safetensors file at all'));
    const out = join(dir, 'm.onnx');
    expectCleanFailure(cli('export', '--weights', bad, '--out', out), /bad\.safetensors: /);
    expect(existsSync(out)).toBe(false);
  });
});

describe('mobileutr split', () => {
  it('writes a seeded split that is the same on every run', async () => {
    const { cpSync, readFileSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'mobileutr-split-'));
    cpSync(new URL('../../samples/busi-mini', import.meta.url).pathname, join(dir, 'data'), { recursive: true });
    const out = join(dir, 'a');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(out);
    const r = cli('split', '--data', join(dir, 'data'), '--val', '0.3', '--seed', '41', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const val = readFileSync(join(out, 'val.txt'), 'utf8').trim().split('\n');
    const train = readFileSync(join(out, 'train.txt'), 'utf8').trim().split('\n');
    expect(val.length).toBe(13);
    expect(train.length + val.length).toBe(44);
    cli('split', '--data', join(dir, 'data'), '--val', '0.3', '--seed', '41');
    expect(readFileSync(join(dir, 'data', 'val.txt'), 'utf8').trim().split('\n')).toEqual(val);
  });

  it('a missing dataset is a clean failure', () => {
    expectCleanFailure(cli('split', '--data', '/nonexistent/ds'), /\/nonexistent\/ds: dataset folder not found/);
  });
});

describe('mobileutr predict and eval', () => {
  const sample = new URL('../../samples/busi-mini', import.meta.url).pathname;

  it('predict writes one mask per image at the original size, plus overlays and probabilities', async () => {
    const out = mkdtempSync(join(tmpdir(), 'mobileutr-pred-'));
    const r = cli('predict', '--size', '32', '--input', join(sample, 'images'), '--out', out, '--overlay', '--prob');
    expect(r.code, r.stderr).toBe(0);
    const sharp = (await import('sharp')).default;
    for (const id of ['benign_001', 'malignant_001', 'normal_001']) {
      const src = await sharp(join(sample, 'images', `${id}.png`)).metadata();
      for (const suffix of ['', '_overlay', '_prob']) {
        const m = await sharp(join(out, `${id}${suffix}.png`)).metadata();
        expect([m.width, m.height], `${id}${suffix}`).toEqual([src.width, src.height]);
      }
    }
  });

  it('predict on a non-image file fails cleanly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mobileutr-pred-'));
    writeFileSync(join(dir, 'scan.png'), 'not a png');
    expectCleanFailure(cli('predict', '--size', '32', '--input', join(dir, 'scan.png'), '--out', join(dir, 'o')), /scan\.png: not a readable image/);
  });

  it('eval writes per-image CSV, summary JSON and an HTML report', async () => {
    const { readFileSync } = await import('node:fs');
    const out = mkdtempSync(join(tmpdir(), 'mobileutr-eval-'));
    const r = cli('eval', '--size', '32', '--data', sample, '--split', join(sample, 'val.txt'), '--out', out, '--cases', '2');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/IOU \d+\.\d\d ± \d+\.\d\d/);
    const csv = readFileSync(join(out, 'per_image.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('id,class,iou,dice,se,pc,sp,acc,f1,hd95');
    expect(csv).toHaveLength(12);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.images).toBe(11);
    expect(summary.class0.iou.n).toBe(11);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toMatch(/<img src="data:image\/png;base64,/);
  });
});
