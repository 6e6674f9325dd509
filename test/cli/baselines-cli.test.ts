// The baselines through every command that takes a model: info, train, eval, predict, export, serve.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { readSafetensorsFile } from '../../src/io/safetensors.ts';
import { diskPng, serveCli, stopCli } from '../server/support.ts';
import { BIN } from '../support/bin.ts';

const SAMPLE = new URL('../../samples/busi-mini/', import.meta.url).pathname;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('UNeXt and CMUNeXt on the command line', () => {
  it.each([
    ['unext', 1_471_921, 562_003_968],
    ['cmunext', 3_149_185, 7_230_627_840],
  ])('info --model %s --json gives %i parameters and %i MACs at 256x256', (name, params, macs) => {
    const r = cli('info', '--model', name, '--size', '256', '--json');
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info).toMatchObject({ model: name, params, macs, macs_with_attention: macs, size: 256, output: [1, 1, 256, 256] });
  });

  it('info --model unext prints a layer table; --size 48 fails cleanly (UNeXt needs multiples of 32)', () => {
    const r = cli('info', '--model', 'unext', '--size', '64');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^unext: UNeXt baseline/);
    expect(r.stdout).toMatch(/block2\s+\[/);
    expect(r.stdout).toMatch(/parameters:\s+1,471,921/);
    const bad = cli('info', '--model', 'unext', '--size', '48');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/unext needs a size that is a multiple of 32, got 48/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });

  // one epoch at 32x32 on the bundled sample, then every command on the run's weights (which name the model)
  it.each(['unext', 'cmunext'])('%s: train, then eval, predict, export and serve from its weights', async (name) => {
    const dir = mkdtempSync(join(tmpdir(), `mobileutr-${name}-`));
    const run = join(dir, 'run');
    const t = cli('train', '--model', name, '--data', SAMPLE, '--split', join(SAMPLE, 'train.txt'), '--val-split', join(SAMPLE, 'val.txt'), '--size', '32', '--epochs', '1', '--threads', '1', '--out', run);
    expect(t.code, t.stderr).toBe(0);
    const weights = join(run, 'best.safetensors');
    const file = await readSafetensorsFile(weights);
    expect(file.metadata).toMatchObject({ model: name, size: '32' });
    expect(file.tensors.has(name === 'unext' ? 'block1.0.mlp.dwconv.dwconv.weight' : 'encoder4.block.2.0.fn.0.weight')).toBe(true);
    expect(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'))).toMatchObject({ model: name });

    const e = cli('eval', '--weights', weights, '--data', SAMPLE, '--split', join(SAMPLE, 'val.txt'), '--out', join(dir, 'eval'), '--threads', '1');
    expect(e.code, e.stderr).toBe(0);
    expect(existsSync(join(dir, 'eval', 'per_image.csv'))).toBe(true);

    const p = cli('predict', '--weights', weights, '--input', join(SAMPLE, 'images'), '--out', join(dir, 'pred'), '--threads', '1');
    expect(p.code, p.stderr).toBe(0);
    expect(readdirSync(join(dir, 'pred')).filter((f) => f.endsWith('.png'))).toHaveLength(readdirSync(join(SAMPLE, 'images')).length);

    const onnx = join(dir, 'model.onnx');
    const x = cli('export', '--weights', weights, '--out', onnx);
    expect(x.code, x.stderr).toBe(0);
    const session = await ort.InferenceSession.create(onnx);
    const out = await session.run({ input: new ort.Tensor('float32', new Float32Array(2 * 3 * 32 * 32).fill(0.5), [2, 3, 32, 32]) });
    expect(out.logits!.dims).toEqual([2, 1, 32, 32]);
    await session.release();

    const s = await serveCli('--weights', weights, '--concurrency', '1');
    try {
      expect(await (await fetch(`${s.url}/v1/model`)).json()).toMatchObject({ name, input_size: 32, default_weights: false });
      const res = await fetch(`${s.url}/v1/segment`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: new Uint8Array(await diskPng(48, 40)) });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^image\/png/);
    } finally {
      await stopCli(s);
    }
  }, 240_000);
});
