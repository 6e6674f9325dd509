// Every command, given bad input, prints one line naming the file and the problem and exits 1: never a stack
// trace, never a crash. Real files, the real CLI in child processes (tiny models: --size 32).
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pngBomb, writePng } from '../support/png.ts';
import { cli, cliAll, diskPng, expectCleanFailure, goodDataset, maskPng, put, tempDir } from './support.ts';

let dir: string;
const p = (...parts: string[]) => join(dir, ...parts);

beforeAll(async () => {
  dir = tempDir('mobileutr-cli-rel-');
  await goodDataset(p('ds'), ['a', 'b', 'c', 'd']);
  await goodDataset(p('unpaired'), ['a', 'b', 'c', 'd']);
  put(p('unpaired', 'images', 'lonely.png'), await diskPng(20, 20));
  put(p('unpaired', 'masks', '0', 'ghost.png'), await maskPng(20, 20));
  await goodDataset(p('mismatch'), ['a', 'b']);
  put(p('mismatch', 'masks', '0', 'b.png'), await maskPng(41, 30));
  await goodDataset(p('corrupt'), ['a', 'b']);
  put(p('corrupt', 'images', 'b.png'), (await diskPng(40, 30)).subarray(0, 90));
  await goodDataset(p('bombed'), ['a', 'b']);
  put(p('bombed', 'images', 'b.png'), pngBomb(60_000, 60_000));
  mkdirSync(p('empty'));
  put(p('good.png'), await diskPng(40, 30));
  put(p('zero.png'), new Uint8Array(0));
  put(p('trunc.png'), (await diskPng(40, 30)).subarray(0, 100));
  put(p('bomb.png'), pngBomb(100_000, 100_000));
  put(p('twins', 'x.png'), await diskPng(20, 20));
  put(p('twins', 'x.jpg'), await sharp(await diskPng(20, 20)).jpeg().toBuffer());
  put(p('split-unknown.txt'), 'a\nb\nzzz\n');
  put(p('afile'), 'I am a file');
  // images that must decode and be segmented: 16-bit grey, palette, grey+alpha, 1-bit
  put(p('kinds', 'grey16.png'), writePng({ width: 33, height: 17, bitDepth: 16, colorType: 0, samples: Array.from({ length: 33 * 17 }, (_, i) => (i * 2039) % 65536) }));
  put(
    p('kinds', 'palette.png'),
    writePng({ width: 21, height: 13, bitDepth: 4, colorType: 3, samples: Array.from({ length: 21 * 13 }, (_, i) => i % 3), palette: [[0, 0, 0], [250, 250, 250], [90, 120, 30]] }),
  );
  put(p('kinds', 'greyalpha.png'), writePng({ width: 10, height: 30, bitDepth: 8, colorType: 4, samples: Array.from({ length: 600 }, (_, i) => (i % 2 ? 255 : i % 251)) }));
  put(p('kinds', 'bits1.png'), writePng({ width: 19, height: 19, bitDepth: 1, colorType: 0, samples: Array.from({ length: 361 }, (_, i) => i % 2) }));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const M = ['--size', '32'];

describe('bad input: one line naming the file, exit 1', () => {
  const cases: [string, () => string[], RegExp, (() => string)?][] = [
    // images
    ['predict: missing file', () => ['predict', ...M, '-i', p('missing.png'), '-o', p('o')], /missing\.png: not found/, () => p('missing.png')],
    ['predict: zero-byte file', () => ['predict', ...M, '-i', p('zero.png'), '-o', p('o')], /: empty file \(0 bytes\)$/, () => p('zero.png')],
    ['predict: truncated PNG', () => ['predict', ...M, '-i', p('trunc.png'), '-o', p('o')], /: not a readable image/, () => p('trunc.png')],
    ['predict: PNG bomb', () => ['predict', ...M, '-i', p('bomb.png'), '-o', p('o')], /100000x100000 = 10,000,000,000 pixels, over the limit/, () => p('bomb.png')],
    ['predict: folder without images', () => ['predict', ...M, '-i', p('empty'), '-o', p('o')], /: no images \(/, () => p('empty')],
    ['predict: two inputs writing the same mask', () => ['predict', ...M, '-i', p('twins'), '-o', p('o')], /same name as x\.jpg; both would write x\.png/, () => p('twins')],
    ['predict: output folder is a file', () => ['predict', ...M, '-i', p('good.png'), '-o', p('afile')], /cannot create the output folder \(a file is in the way\)/, () => p('afile')],
    ['predict: 4-channel model, RGB image', () => ['predict', ...M, '--in-channels', '4', '-i', p('good.png'), '-o', p('o')], /takes 4 input channels, but images are read as grey \(1\) or RGB \(3\)/],
    // datasets
    ['eval: missing dataset', () => ['eval', ...M, '-d', p('nope'), '-o', p('e')], /nope: dataset folder not found/, () => p('nope')],
    ['eval: empty dataset folder', () => ['eval', ...M, '-d', p('empty'), '-o', p('e')], /images folder .* not found/, () => p('empty', 'images')],
    ['eval: image without mask', () => ['eval', ...M, '-d', p('unpaired'), '-o', p('e')], /mask without image \(and 1 more\); run "mobileutr check --data .*" to list every problem/, () => p('unpaired', 'masks', '0', 'ghost.png')],
    ['eval: mask of another size', () => ['eval', ...M, '-d', p('mismatch'), '-o', p('e')], /: mask is 41x30 but its image is 40x30$/, () => p('mismatch', 'masks', '0', 'b.png')],
    ['eval: truncated image in the dataset', () => ['eval', ...M, '-d', p('corrupt'), '-o', p('e')], /: not a readable image/, () => p('corrupt', 'images', 'b.png')],
    ['eval: PNG bomb in the dataset', () => ['eval', ...M, '-d', p('bombed'), '-o', p('e')], /60000x60000 = 3,600,000,000 pixels, over the limit/, () => p('bombed', 'images', 'b.png')],
    ['eval: split file with an unknown id', () => ['eval', ...M, '-d', p('ds'), '--split', p('split-unknown.txt'), '-o', p('e')], /split-unknown\.txt:3: "zzz" is not an id of the dataset/],
    ['eval: 2-channel model', () => ['eval', ...M, '--in-channels', '2', '-d', p('ds'), '-o', p('e')], /takes 2 input channels/],
    ['split: image without mask', () => ['split', '-d', p('unpaired'), '-o', p('s')], /mask without image \(and 1 more\)/, () => p('unpaired', 'masks', '0', 'ghost.png')],
    ['split: dataset is a file', () => ['split', '-d', p('afile')], /afile: dataset folder is not a folder/, () => p('afile')],
    ['split: output under a file', () => ['split', '-d', p('ds'), '-o', p('afile', 'sub')], /cannot create the output folder/, () => p('afile', 'sub')],
    ['export: output folder missing', () => ['export', ...M, '-o', p('no', 'such', 'm.onnx')], /m\.onnx: cannot write \(its folder does not exist\)/, () => p('no', 'such', 'm.onnx')],
    ['serve: 4-channel model', () => ['serve', ...M, '--in-channels', '4', '--port', '0'], /takes 4 input channels/],
    // option values
    ['--size not a multiple of 16', () => ['predict', '--size', '100', '-i', p('good.png'), '-o', p('o')], /size must be a multiple of 16 \(the network downsamples 4 times\), got 100/],
    ['--size 0', () => ['export', '--size', '0', '-o', p('m.onnx')], /must be >= 16, got 0/],
    ['--size too large', () => ['info', '--size', '8192'], /size must be at most 4096/],
    ['--threads 0', () => ['predict', ...M, '--threads', '0', '-i', p('good.png'), '-o', p('o')], /must be >= 1, got 0/],
    ['--cases -1', () => ['eval', ...M, '--cases', '-1', '-d', p('ds')], /must be >= 0, got -1/],
    ['--val 1.5', () => ['split', '-d', p('ds'), '--val', '1.5'], /must be a number between 0 and 1, got "1\.5"/],
    ['check --size 40', () => ['check', '-d', p('ds'), '--size', '40'], /must be a multiple of 16/],
    ['serve --max-pixels over the hard limit', () => ['serve', ...M, '--max-pixels', '100000000'], /max-pixels must be an integer from 1 to 67108864, got 100000000/],
    ['unknown option', () => ['eval', '-d', p('ds'), '--fast'], /unknown option '--fast'/],
  ];

  it(`${cases.length} cases, all clean`, async () => {
    const results = await cliAll(cases.map(([, args]) => args()));
    const failed: string[] = [];
    results.forEach((r, i) => {
      const [name, , pattern, file] = cases[i]!;
      try {
        expectCleanFailure(r, pattern, file?.());
      } catch (e) {
        failed.push(`${name}: ${(e as Error).message.split('\n').slice(0, 6).join('\n')}`);
      }
    });
    expect(failed, failed.join('\n\n')).toEqual([]);
    // nothing half-written by the failed runs
    expect(existsSync(p('m.onnx'))).toBe(false);
    expect(existsSync(p('s'))).toBe(false);
  });
});

describe('defined behaviours that succeed', () => {
  it('16-bit, palette, grey+alpha and 1-bit PNGs are segmented at their own size', async () => {
    const out = p('kinds-out');
    const r = await cli(['predict', ...M, '-i', p('kinds'), '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote 4 masks/);
    for (const [name, w, h] of [
      ['grey16', 33, 17],
      ['palette', 21, 13],
      ['greyalpha', 10, 30],
      ['bits1', 19, 19],
    ] as const) {
      const m = await sharp(join(out, `${name}.png`)).metadata();
      expect([m.width, m.height], name).toEqual([w, h]);
    }
  });

  it('a 1-channel model takes RGB images (as grey) and a 3-channel model takes grey ones (repeated)', async () => {
    const grey = p('grey.png');
    put(grey, await diskPng(24, 24, 1));
    const [one, three] = await Promise.all([
      cli(['predict', ...M, '--in-channels', '1', '-i', p('good.png'), '-o', p('c1')]),
      cli(['predict', ...M, '--in-channels', '3', '-i', grey, '-o', p('c3')]),
    ]);
    expect(one.code, one.stderr).toBe(0);
    expect(three.code, three.stderr).toBe(0);
  });

  it('a folder with some bad images: the good ones are written, each bad one named, exit 1', async () => {
    const folder = p('mixed');
    put(join(folder, 'a.png'), await diskPng(30, 20));
    put(join(folder, 'b.png'), new Uint8Array(0));
    put(join(folder, 'c.png'), pngBomb(70_000, 70_000));
    put(join(folder, 'd.png'), await diskPng(20, 30));
    const r = await cli(['predict', ...M, '-i', folder, '-o', p('mixed-out')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/wrote 2 masks to .* \(2 files skipped\)/);
    expect(r.stderr).toMatch(/skipped: .*b\.png: empty file/);
    expect(r.stderr).toMatch(/skipped: .*c\.png: image is 70000x70000/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(p('mixed-out')).sort()).toEqual(['a.png', 'd.png']);
  });

  it('--skip-unpaired: eval and split leave unpaired files out with a warning each, exit 0', async () => {
    const [e, s] = await cliAll([
      ['eval', ...M, '-d', p('unpaired'), '-o', p('e-skip'), '--cases', '1', '--skip-unpaired'],
      ['split', '-d', p('unpaired'), '-o', p('s-skip'), '--val', '0.5', '--skip-unpaired'],
    ]);
    for (const r of [e, s]) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/warning: .*ghost\.png: mask without image \(skipped\)/);
      expect(r.stderr).toMatch(/warning: .*lonely\.png: image without mask .*\(skipped\)/);
    }
    expect(s.stdout).toMatch(/^4 pairs: 2 in .*train\.txt, 2 in .*val\.txt/);
    rmSync(p('s-skip'), { recursive: true });
  });
});
