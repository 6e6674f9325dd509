// --lgl-kernel on the command line: parsing and its one-line errors, the default, and `train --lgl-kernel auto`
// whose kernel then travels in the weights to info, predict and export, and in config.json to a resume.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { readSafetensorsFile } from '../../src/io/safetensors.ts';
import type { TrainConfig } from '../../src/train/config.ts';
import { runTraining } from '../../src/train/loop.ts';
import { readOnnxSummary } from '../../src/web/onnx-info.ts';
import { BIN } from '../support/bin.ts';


function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The error a failed command prints: its first stderr line, with no stack trace anywhere. */
function failure(r: ReturnType<typeof cli>): string {
  expect(r.code).not.toBe(0);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return r.stderr.split('\n')[0]!;
}

describe('--lgl-kernel on the command line', () => {
  it('info: the default is 9 (the official network); N changes the LocalAgg kernels', () => {
    const d = cli('info', '--size', '64', '--json');
    expect(d.code, d.stderr).toBe(0);
    expect(JSON.parse(d.stdout)).toMatchObject({ model: 'mobileutr', lgl_kernel: 9, params: 1_390_305 });
    const k5 = cli('info', '--size', '64', '--json', '--lgl-kernel', '5');
    expect(k5.code, k5.stderr).toBe(0);
    expect(JSON.parse(k5.stdout)).toMatchObject({ lgl_kernel: 5, params: 1_390_305 - 6 * 64 * (81 - 25) });
    const u = cli('info', '--model', 'unext', '--size', '64', '--json');
    expect(JSON.parse(u.stdout).lgl_kernel).toBeUndefined();
  });

  it('bad values, auto outside train and models without LGL blocks fail in one line', () => {
    expect(failure(cli('info', '--lgl-kernel', '4'))).toBe(`error: option '--lgl-kernel <n>' argument '4' is invalid. must be an odd integer from 3 to 31, got 4.`);
    expect(failure(cli('export', '--lgl-kernel', '33', '--out', join(tmpdir(), 'never.onnx')))).toMatch(/argument '33' is invalid\. must be an odd integer from 3 to 31, got 33\./);
    expect(failure(cli('info', '--lgl-kernel', 'big'))).toMatch(/argument 'big' is invalid\. must be an odd integer from 3 to 31, got "big"\./);
    expect(failure(cli('info', '--lgl-kernel', 'auto'))).toMatch(/argument 'auto' is invalid\. .*\(auto measures the training masks: train only\)/);
    expect(failure(cli('info', '--model', 'unet', '--lgl-kernel', '5'))).toBe('mobileutr: error: lgl-kernel applies to MobileUtr (mobileutr, mobileutr-l) only; unet has no LGL blocks');
    expect(failure(cli('train', '--model', 'unext', '--lgl-kernel', 'auto', '--size', '32', '--out', join(mkdtempSync(join(tmpdir(), 'mobileutr-lgl-')), 'run'))))
      .toBe('mobileutr: error: --lgl-kernel applies to MobileUtr (mobileutr, mobileutr-l) only; unext has no LGL blocks');
    expect(failure(cli('train', '--lgl-kernel', '6', '--size', '32'))).toMatch(/argument '6' is invalid/);
    // fine-tuning keeps the kernel of its starting weights (the bundled BUSI model is the official 9x9)
    expect(failure(cli('train', '--init', 'busi', '--lgl-kernel', '5', '--size', '32', '--out', join(mkdtempSync(join(tmpdir(), 'mobileutr-lgl-')), 'run'))))
      .toBe('mobileutr: error: --lgl-kernel 5, but --init busi holds LGL kernel 9 weights; leave --lgl-kernel out to fine-tune with theirs');
  });

  // 6 pairs stored at 128x128, each mask one 120x120 square: 60x60 at the training size 64, D = 2·60/sqrt(π) = 67.7 -> K 5
  it('train --lgl-kernel auto (1 epoch, tiny): prints D and K, records them, and every command rebuilds that network', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mobileutr-lgl-'));
    const data = join(dir, 'data');
    mkdirSync(join(data, 'images'), { recursive: true });
    mkdirSync(join(data, 'masks', '0'), { recursive: true });
    const ids = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'];
    for (const [i, id] of ids.entries()) {
      const mask = new Uint8Array(128 * 128);
      for (let y = 4; y < 124; y++) mask.fill(255, y * 128 + 4, y * 128 + 124);
      const image = Uint8Array.from(mask, (v, j) => (v ? 180 : 40) + ((j * (i + 3)) % 29));
      await sharp(mask, { raw: { width: 128, height: 128, channels: 1 } }).png().toFile(join(data, 'masks', '0', `${id}.png`));
      await sharp(image, { raw: { width: 128, height: 128, channels: 1 } }).png().toFile(join(data, 'images', `${id}.png`));
    }
    writeFileSync(join(data, 'train.txt'), ids.slice(0, 4).join('\n'));
    writeFileSync(join(data, 'val.txt'), ids.slice(4).join('\n'));
    const run = join(dir, 'run');
    const t = cli('train', '--data', data, '--split', join(data, 'train.txt'), '--val-split', join(data, 'val.txt'), '--size', '64', '--batch', '2', '--epochs', '1', '--threads', '1', '--lgl-kernel', 'auto', '--out', run);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain('--lgl-kernel auto: mean target diameter 67.7 px at 64x64 (equivalent-circle diameter of 4 connected objects in 4 training masks, 0 empty); D/16 = 4.23 -> LGL kernel 5x5');
    expect(t.stdout).toMatch(/training mobileutr on .*64x64, LGL kernel 5,/);

    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as TrainConfig;
    expect(config.lglKernel).toBe(5);
    expect(config.lglKernelAuto).toMatchObject({ objects: 4, masks: 4, emptyMasks: 0, size: 64, kernel: 5 });
    const weights = join(run, 'best.safetensors');
    const file = await readSafetensorsFile(weights);
    expect(file.metadata).toMatchObject({ model: 'mobileutr', size: '64', lgl_kernel: '5' });
    expect(file.tensors.get('lklgl_bottleneck.0.LocalAgg.pos_embed.weight')!.shape).toEqual([64, 1, 5, 5]);

    // from the weights alone
    const info = cli('info', '--weights', weights, '--json');
    expect(info.code, info.stderr).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ lgl_kernel: 5, size: 64, params: 1_390_305 - 6 * 64 * (81 - 25) });
    const p = cli('predict', '--weights', weights, '--input', join(data, 'images'), '--out', join(dir, 'pred'), '--threads', '1');
    expect(p.code, p.stderr).toBe(0);
    expect(readdirSync(join(dir, 'pred')).filter((f) => f.endsWith('.png'))).toHaveLength(ids.length);
    const onnx = join(dir, 'model.onnx');
    const x = cli('export', '--weights', weights, '--out', onnx);
    expect(x.code, x.stderr).toBe(0);
    expect(readOnnxSummary(readFileSync(onnx)).metadata).toMatchObject({ model: 'mobileutr', lgl_kernel: '5' });
    expect(failure(cli('info', '--weights', weights, '--lgl-kernel', '9'))).toBe(`mobileutr: error: ${weights}: the weights have LGL kernel 5, not 9; leave --lgl-kernel out to use theirs`);

    // resume rebuilds the 5x5 network from config.json (a 9x9 one could not take the checkpoint's tensors)
    const resumed = await runTraining(run, { ...config, epochs: 2 }, { resume: true, maxSteps: 1 });
    expect(resumed.model.options.lglKernel).toBe(5);
    expect(resumed.position.epoch).toBe(1);
  }, 600_000);
});
