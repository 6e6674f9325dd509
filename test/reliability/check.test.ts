// `mobileutr check`: every problem of a dataset in one pass, with the file named, and exit 1 when there are errors.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDataset, type Finding } from '../../src/data/check.ts';
import { pngBomb, writePng } from '../support/png.ts';
import { writeTiff } from '../support/tiff.ts';
import { cli, diskPng, expectCleanFailure, goodDataset, maskPng, put, tempDir } from './support.ts';

const W = 40;
const H = 30;
const grey = (w: number, h: number, f: (i: number) => number) => writePng({ width: w, height: h, bitDepth: 8, colorType: 0, samples: Array.from({ length: w * h }, (_, i) => f(i)) });

let root: string;
let findings: Finding[];

beforeAll(async () => {
  root = tempDir('mobileutr-check-');
  const img = (id: string, bytes: Uint8Array, ext = 'png') => put(join(root, 'images', `${id}.${ext}`), bytes);
  const mask = (id: string, bytes: Uint8Array, ext = 'png') => put(join(root, 'masks', '0', `${id}.${ext}`), bytes);
  const good = await diskPng(W, H);
  const goodMask = await maskPng(W, H);
  // a clean pair, and its image again under another id
  img('ok1', await diskPng(W, H));
  mask('ok1', goodMask);
  img('zcopy', good);
  mask('zcopy', goodMask);
  // pairing
  img('orphan', await diskPng(W + 2, H));
  mask('ghost', goodMask);
  img('dup', await diskPng(W, H + 2));
  img('dup', await sharp(await diskPng(W, H + 2)).jpeg().toBuffer(), 'jpg');
  mask('dup', await maskPng(W, H + 2));
  img('twomasks', await diskPng(W + 4, H));
  mask('twomasks', await maskPng(W + 4, H));
  mask('twomasks', await sharp(await maskPng(W + 4, H)).jpeg().toBuffer(), 'jpg');
  // files that do not decode
  img('trunc', good.subarray(0, good.length - 60));
  mask('trunc', goodMask);
  img('zero', new Uint8Array(0));
  mask('zero', goodMask);
  img('text', new TextEncoder().encode('not an image'));
  mask('text', goodMask);
  img('bomb', pngBomb(100_000, 100_000));
  mask('bomb', goodMask);
  img('badmask', await diskPng(W + 6, H));
  mask('badmask', new TextEncoder().encode('GIF89a not really'));
  // sizes and values
  img('mism', await diskPng(W + 8, H));
  mask('mism', await maskPng(W + 9, H));
  img('levels', await diskPng(W + 10, H));
  mask('levels', grey(W + 10, H, (i) => [0, 255, 128, 40][i % 4]!));
  img('label', await diskPng(W + 12, H));
  mask('label', grey(W + 12, H, (i) => i % 3));
  img('zeroone', await diskPng(W + 14, H));
  mask('zeroone', grey(W + 14, H, (i) => i % 2));
  img('empty', await diskPng(W + 16, H));
  mask('empty', grey(W + 16, H, () => 0));
  img('red', await diskPng(W + 18, H));
  mask('red', await sharp({ create: { width: W + 18, height: H, channels: 3, background: '#ff0000' } }).png().toBuffer());
  img('tiny', await diskPng(128, 128));
  mask('tiny', grey(128, 128, (i) => (i === 128 + 1 ? 255 : 0)));
  img('wide16', writePng({ width: W, height: H + 8, bitDepth: 16, colorType: 0, samples: Array.from({ length: W * (H + 8) }, (_, i) => (i * 97) % 65536) }));
  mask('wide16', writePng({ width: W, height: H + 8, bitDepth: 16, colorType: 0, samples: Array.from({ length: W * (H + 8) }, (_, i) => (i % W < 20 ? 65535 : 0)) }));
  put(join(root, 'images', 'notes.txt'), 'scanner settings');
  mkdirSync(join(root, 'masks', 'old'));
  // split files: train and val share an id; test names an unknown one
  put(join(root, 'train.txt'), 'ok1\nzcopy\n');
  put(join(root, 'val.txt'), 'levels\nok1\n');
  put(join(root, 'test.txt'), 'tiny\nnope\n');

  findings = (await checkDataset(root, { size: 32 })).findings;
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const at = (file: string) => findings.filter((f) => f.path === join(root, file)).map((f) => `${f.severity}: ${f.message}`);

describe('mobileutr check', () => {
  it('lists every problem, each with its file, in one pass', () => {
    expect(at('images/orphan.png')).toEqual(['error: image without mask (expected masks/0/orphan.png)']);
    expect(at('masks/0/ghost.png')).toEqual(['error: mask without image']);
    expect(at('images/dup.png')).toEqual(['error: duplicate id "dup" (also dup.jpg)']);
    expect(at('masks/0/twomasks.png')).toEqual(['error: duplicate mask for id "twomasks" (also twomasks.jpg)']);
    expect(at('images/trunc.png')).toEqual([expect.stringMatching(/^error: not a readable image \(.+\)$/)]); // libvips' words vary
    expect(at('images/zero.png')).toEqual(['error: empty file (0 bytes)']);
    expect(at('images/text.png')).toEqual(['error: not a readable image (unknown format)']);
    expect(at('images/bomb.png')).toEqual(['error: image is 100000x100000 = 10,000,000,000 pixels, over the limit of 67,108,864 pixels']);
    expect(at('masks/0/badmask.png')).toEqual([expect.stringMatching(/^error: (not a readable image|unsupported image format)/)]);
    expect(at('masks/0/mism.png')).toEqual(['error: mask is 49x30 but its image is 48x30']);
    expect(at('masks/0/levels.png')).toEqual([expect.stringMatching(/^warning: 750 pixels \(50\.0%\) are neither 0 nor 255; they are thresholded \(> 127 is foreground\)$/)]);
    expect(at('masks/0/label.png')).toEqual([expect.stringMatching(/^error: no foreground: the largest value is 2, and foreground is > 127/)]);
    expect(at('masks/0/zeroone.png')).toEqual(['info: 0/1 mask: value 1 is read as foreground (50.0% of the pixels)']);
    expect(at('masks/0/empty.png')).toEqual(['info: empty mask (no foreground)']);
    expect(at('masks/0/red.png')).toEqual([
      expect.stringMatching(/^error: no foreground: the largest value is 127/),
      expect.stringMatching(/^warning: colour mask: 1740 pixels are not grey/),
    ]);
    expect(at('masks/0/tiny.png')).toEqual(['warning: the foreground (1 pixels) vanishes when the mask is resized to 32x32: it trains and scores as empty']);
    expect(at('images/zcopy.png')).toEqual([expect.stringMatching(/^warning: same bytes as .*images\/ok1\.png/)]);
    expect(at('masks/0/twomasks.jpg')).toEqual([expect.stringMatching(/^warning: \d+ pixels .* are neither 0 nor 255; .*JPEG is lossy, store masks as PNG$/)]);
    expect(at('images/notes.txt')).toEqual([expect.stringMatching(/^info: ignored: not an image extension/)]);
    expect(at('masks/old')).toEqual([expect.stringMatching(/^info: folder ignored/)]);
    expect(at('val.txt')).toEqual(['error: 1 id is also in train.txt (first: "ok1"): the same image in two splits']);
    expect(at('test.txt:2')).toEqual(['error: "nope" is not an id of the dataset']);
    // clean pairs, a 16-bit pair and a JPEG mask's pair have nothing to report beyond the lines above
    expect(at('images/ok1.png')).toEqual([]);
    expect(at('images/wide16.png')).toEqual([]);
    expect(at('masks/0/wide16.png')).toEqual([]);
  });

  it('the command prints one line per finding and a summary, and exits 1 on errors', async () => {
    const r = await cli(['check', '--data', root, '--size', '32']);
    expect(r.code, r.stderr).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, -1)).toHaveLength(findings.length);
    for (const l of lines.slice(0, -1)) expect(l).toMatch(/^(error|warning|info): \/\S+: \S/);
    const errors = findings.filter((f) => f.severity === 'error').length;
    expect(lines.at(-1)).toBe(
      `${root}: 19 images, 19 masks in 1 class folder, 7 usable pairs: ${errors} errors, ${findings.filter((f) => f.severity === 'warning').length} warnings, ${findings.filter((f) => f.severity === 'info').length} notes`,
    );
    expect(r.stderr).toBe('');
    const quiet = await cli(['check', '--data', root, '--quiet']);
    expect(quiet.stdout).not.toMatch(/^info:/m);
  });

  it('a clean dataset passes with exit 0; the shipped sample too', async () => {
    const clean = await goodDataset(tempDir(), ['a', 'b', 'c']);
    put(join(clean, 'images', 'c.png'), await diskPng(W, H + 1));
    put(join(clean, 'masks', '0', 'c.png'), await maskPng(W, H + 1));
    put(join(clean, 'images', 'b.png'), await diskPng(W + 1, H));
    put(join(clean, 'masks', '0', 'b.png'), await maskPng(W + 1, H));
    const [r, sample] = await Promise.all([cli(['check', '--data', clean]), cli(['check', '--data', new URL('../../samples/busi-mini', import.meta.url).pathname, '-q'])]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`${clean}: 3 images, 3 masks in 1 class folder, 3 usable pairs: 0 errors, 0 warnings, 0 notes`);
    expect(sample.code, sample.stdout).toBe(0);
    expect(sample.stdout).toMatch(/44 images, 44 masks in 1 class folder, 44 usable pairs: 0 errors, 0 warnings, 4 notes/);
  });

  it('a TIFF tagged grey that stores RGB samples is decoded as RGB, with a warning naming the file', async () => {
    const dir = await goodDataset(tempDir(), ['a']);
    const rgb = Array.from({ length: W * H * 3 }, (_, i) => (i % 3 === 1 ? 200 : (i * 7) % 256));
    const image = put(join(dir, 'images', 'endo.tif'), writeTiff({ width: W, height: H, samples: 3, bits: 8, photometric: 1, data: rgb }));
    put(join(dir, 'masks', '0', 'endo.png'), await maskPng(W, H));
    const r = await checkDataset(dir);
    expect(r.findings.map((f) => `${f.severity}: ${f.path}: ${f.message}`)).toEqual([
      `warning: ${image}: TIFF tagged grey (PhotometricInterpretation min-is-black) stores 3 samples per pixel: decoded as RGB from its stored samples (a reader that trusts the tag sees only the first one, as grey)`,
    ]);
    expect(r.usable).toBe(2);
    const out = await cli(['check', '--data', dir]);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    expect(out.stdout).toContain(`warning: ${image}: TIFF tagged grey`);
  });

  it('layout problems: an empty folder, missing images/ and masks/, a gap in class folders', async () => {
    const empty = tempDir();
    let r = await checkDataset(empty);
    expect(r.findings.map((f) => f.message)).toEqual(['dataset folder is empty (expected images/<id>.<ext> and masks/0/<id>.png)']);
    const noMasks = tempDir();
    put(join(noMasks, 'images', 'a.png'), await diskPng(8, 8));
    put(join(noMasks, 'readme.md'), '#');
    r = await checkDataset(noMasks);
    expect(r.findings.map((f) => `${f.severity}: ${f.message}`)).toEqual(['error: masks folder (expected masks/0/<id>.png) not found']);
    const gap = await goodDataset(tempDir(), ['a']);
    put(join(gap, 'masks', '2', 'a.png'), await maskPng(W, H));
    r = await checkDataset(gap);
    expect(r.findings.map((f) => `${f.severity}: ${f.path.slice(gap.length)}: ${f.message}`)).toEqual([
      'error: /masks/1: class folder missing (class folders must be 0..2)',
    ]);
    // the missing dataset folder itself is the one thing that stops the command
    expectCleanFailure(await cli(['check', '--data', join(empty, 'nope')]), /nope: dataset folder not found/);
    expect(readFileSync(join(root, 'train.txt'), 'utf8')).toBe('ok1\nzcopy\n'); // check writes nothing
  });
});
