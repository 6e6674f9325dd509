import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { applyRotateFlip, drawRotateFlip, randomRotateFlip, type Raster } from '../../src/data/augment.ts';
import { scanDataset } from '../../src/data/dataset.ts';
import { BatchLoader, collate } from '../../src/data/loader.ts';
import { loadPair, resizePair, type Sample } from '../../src/data/samples.ts';
import { makeSplit, readRunSplit, readSplitFile } from '../../src/data/split.ts';
import { UserError } from '../../src/errors.ts';
import { Rng } from '../../src/util/rng.ts';

const SAMPLE = new URL('../../samples/busi-mini', import.meta.url).pathname;

async function makeDataset(pairs: { id: string; w: number; h: number; maskW?: number; ext?: string }[]): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'mobileutr-ds-'));
  mkdirSync(join(root, 'images'));
  mkdirSync(join(root, 'masks', '0'), { recursive: true });
  for (const p of pairs) {
    const img = new Uint8Array(p.w * p.h * 3).map((_, i) => (i * 7) % 256);
    await sharp(img, { raw: { width: p.w, height: p.h, channels: 3 } }).toFormat(p.ext === 'jpg' ? 'jpeg' : 'png').toFile(join(root, 'images', `${p.id}.${p.ext ?? 'png'}`));
    const mw = p.maskW ?? p.w;
    const mask = new Uint8Array(mw * p.h).map((_, i) => (i % mw < mw / 2 ? 255 : 0));
    await sharp(mask, { raw: { width: mw, height: p.h, channels: 1 } }).png().toFile(join(root, 'masks', '0', `${p.id}.png`));
  }
  return root;
}

describe('dataset folders', () => {
  it('pairs images and masks and reports unpaired files', async () => {
    const root = await makeDataset([
      { id: 'a', w: 20, h: 10 },
      { id: 'b', w: 12, h: 12, ext: 'jpg' },
    ]);
    writeFileSync(join(root, 'images', 'orphan.png'), await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } }).png().toBuffer());
    writeFileSync(join(root, 'masks', '0', 'ghost.png'), await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } }).png().toBuffer());
    const ds = await scanDataset(root);
    expect(ds.ids).toEqual(['a', 'b']);
    expect(ds.classes).toBe(1);
    expect(ds.problems.join('\n')).toMatch(/orphan\.png: image without mask/);
    expect(ds.problems.join('\n')).toMatch(/ghost\.png: mask without image/);
  });

  it('a missing folder is a clear error', async () => {
    await expect(scanDataset('/nonexistent/data')).rejects.toThrow(/\/nonexistent\/data: dataset folder not found/);
    const empty = mkdtempSync(join(tmpdir(), 'mobileutr-ds-'));
    await expect(scanDataset(empty)).rejects.toThrow(/images folder .* not found/);
  });

  it('a mask whose size differs from its image is a clear error', async () => {
    const root = await makeDataset([{ id: 'a', w: 20, h: 10, maskW: 18 }]);
    const loader = new BatchLoader(await scanDataset(root), { size: 16, inChannels: 3 });
    await expect(loader.sample('a')).rejects.toThrow(/mask is 18x10 but its image is 20x10/);
  });
});

describe('splits', () => {
  const ids = Array.from({ length: 50 }, (_, i) => `img_${String(i).padStart(3, '0')}`);

  it('are deterministic for a seed and differ across seeds', () => {
    const a = makeSplit(ids, 0.3, 41);
    expect(makeSplit([...ids].reverse(), 0.3, 41)).toEqual(a);
    expect(a.val).toHaveLength(15);
    expect([...a.train, ...a.val].sort()).toEqual(ids);
    expect(makeSplit(ids, 0.3, 42).val).not.toEqual(a.val);
  });

  it('reject bad fractions', () => {
    expect(() => makeSplit(ids, 1.5, 1)).toThrow(UserError);
    expect(() => makeSplit(ids, 0, 1)).toThrow(UserError);
  });

  it('split files: ids or file names, comments; unknown ids name the line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mobileutr-split-'));
    writeFileSync(join(dir, 'ok.txt'), 'img_001\n# comment\n\nimg_002.png\n');
    expect(await readSplitFile(join(dir, 'ok.txt'), ids)).toEqual(['img_001', 'img_002']);
    writeFileSync(join(dir, 'bad.txt'), 'img_001\nnope\n');
    await expect(readSplitFile(join(dir, 'bad.txt'), ids)).rejects.toThrow(/bad\.txt:2: "nope" is not an id of the dataset/);
    writeFileSync(join(dir, 'dup.txt'), 'img_001\nimg_001\n');
    await expect(readSplitFile(join(dir, 'dup.txt'), ids)).rejects.toThrow(/listed twice/);
  });
  it("a run's own split file: every id must still be in the data, else one error naming the first few", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mobileutr-split-'));
    writeFileSync(join(dir, 'train.txt'), `${ids.slice(0, 10).join('\n')}\n`);
    expect(await readRunSplit(join(dir, 'train.txt'), ids, '/data')).toEqual(ids.slice(0, 10));
    // added ids are fine (they stay out of the run), removed ones are not
    expect(await readRunSplit(join(dir, 'train.txt'), [...ids, 'new_1'], '/data')).toHaveLength(10);
    await expect(readRunSplit(join(dir, 'train.txt'), ids.slice(2), '/data')).rejects.toThrow(
      `${join(dir, 'train.txt')}: 2 of the 10 ids this run was started with are no longer in /data ("img_000", "img_001")`,
    );
    await expect(readRunSplit(join(dir, 'train.txt'), ids.slice(7), '/data')).rejects.toThrow(/7 of the 10 .*\(first: "img_000", "img_001", "img_002", "img_003", "img_004"\)/);
    await expect(readRunSplit(join(dir, 'none.txt'), ids, '/data')).rejects.toThrow(/none\.txt: split file not found/);
  });
});

describe('augmentation', () => {
  it('keeps image and mask aligned under every rotation and flip', () => {
    // the mask marks exactly the pixels whose image value is 200: alignment means that stays true
    const n = 9;
    const image = new Uint8Array(n * n).map((_, i) => (i % 5 === 0 || i === 3 ? 200 : i % 200));
    const mask = image.map((v) => (v === 200 ? 1 : 0));
    const s: Sample = { id: 'x', size: n, width: n, height: n, channels: 1, image, mask, classes: 1 };
    const rng = new Rng(7);
    const seen = new Set<string>();
    for (let t = 0; t < 64; t++) {
      const out = randomRotateFlip(s, rng);
      for (let i = 0; i < n * n; i++) expect(out.mask[i]).toBe(out.image[i] === 200 ? 1 : 0);
      seen.add(Array.from(out.image.slice(0, 12)).join(','));
    }
    expect(seen.size).toBeGreaterThanOrEqual(6); // several distinct transforms were drawn
  });

  it('rotates a non-square image into a transposed grid (a quarter turn: width and height swap)', () => {
    // 3 wide, 2 high: rows [0 1 2] and [3 4 5]; one quarter turn as the loader does it gives 2 wide, 3 high
    const r: Raster = { width: 3, height: 2, channels: 1, image: Uint8Array.from([0, 1, 2, 3, 4, 5]), mask: Uint8Array.from([1, 0, 0, 0, 0, 1]), classes: 1 };
    const once = applyRotateFlip(r, { k: 1, flip: 'none' });
    expect([once.width, once.height]).toEqual([2, 3]);
    expect(Array.from(once.image)).toEqual([3, 0, 4, 1, 5, 2]);
    expect(Array.from(once.mask)).toEqual([0, 1, 0, 0, 1, 0]);
    const full = applyRotateFlip(applyRotateFlip(once, { k: 3, flip: 'none' }), { k: 0, flip: 'hv' });
    expect(Array.from(full.image)).toEqual([5, 4, 3, 2, 1, 0]);
  });

  it('every rotation and flip moves each pixel as quarter turns and flips done one at a time would', () => {
    // the naive reference: one step at a time with explicit coordinates (rot90: out(x, y) = in(y, h-1-x))
    const step = (r: Raster, src: (x: number, y: number, w: number, h: number) => [number, number], turn: boolean): Raster => {
      const [w, h] = turn ? [r.height, r.width] : [r.width, r.height];
      const image = new Uint8Array(r.image.length);
      const mask = new Uint8Array(r.mask.length);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const [sx, sy] = src(x, y, r.width, r.height);
          for (let c = 0; c < r.channels; c++) image[(y * w + x) * r.channels + c] = r.image[(sy * r.width + sx) * r.channels + c]!;
          for (let k = 0; k < r.classes; k++) mask[k * w * h + y * w + x] = r.mask[k * r.width * r.height + sy * r.width + sx]!;
        }
      return { ...r, width: w, height: h, image, mask };
    };
    const r: Raster = {
      width: 7,
      height: 4,
      channels: 3,
      image: Uint8Array.from({ length: 7 * 4 * 3 }, (_, i) => i),
      mask: Uint8Array.from({ length: 2 * 7 * 4 }, (_, i) => (i * 5) % 3),
      classes: 2,
    };
    for (const k of [0, 1, 2, 3])
      for (const flip of ['none', 'h', 'v', 'hv'] as const) {
        let ref = r;
        for (let i = 0; i < k; i++) ref = step(ref, (x, y, _w, h) => [y, h - 1 - x], true);
        if (flip === 'h' || flip === 'hv') ref = step(ref, (x, y, w) => [w - 1 - x, y], false);
        if (flip === 'v' || flip === 'hv') ref = step(ref, (x, y, _w, h) => [x, h - 1 - y], false);
        const out = applyRotateFlip(r, { k, flip });
        expect([out.width, out.height], `k ${k} flip ${flip}`).toEqual([ref.width, ref.height]);
        expect(Array.from(out.image), `k ${k} flip ${flip}`).toEqual(Array.from(ref.image));
        expect(Array.from(out.mask), `k ${k} flip ${flip}`).toEqual(Array.from(ref.mask));
      }
  });

  it('augments the stored image before resizing it, as the original protocol; --augment-after-resize the other way', async () => {
    // a non-square image with a mask edge that nearest-neighbour resizing places differently after a flip
    const root = await makeDataset([{ id: 'a', w: 37, h: 23 }]);
    const ds = await scanDataset(root);
    const pair = await loadPair(ds, 'a', false);
    const batchOf = async (augmentAfterResize: boolean, seed: number) => {
      const loader = new BatchLoader(ds, { size: 16, inChannels: 3, augmentAfterResize });
      for await (const b of loader.batches(['a'], { batch: 1, rng: new Rng(seed), augment: true })) return b;
      throw new Error('no batch');
    };
    // the loader's draw for seed s: shuffle, then one u32 per sample seeds that sample's transform
    const drawFor = (seed: number) => {
      const rng = new Rng(seed);
      rng.shuffle(['a']);
      return drawRotateFlip(new Rng(rng.nextU32()));
    };
    let differing = 0;
    for (let seed = 0; seed < 12; seed++) {
      const t = drawFor(seed);
      const first = collate([await resizePair(applyRotateFlip(pair, t), 16)], 3);
      const after = collate([applyRotateFlip(await resizePair(pair, 16), t)], 3);
      expect((await batchOf(false, seed)).targets).toEqual(first.targets);
      expect((await batchOf(false, seed)).images).toEqual(first.images);
      expect((await batchOf(true, seed)).targets).toEqual(after.targets);
      if (first.targets.some((v, i) => v !== after.targets[i])) differing++;
    }
    expect(differing).toBeGreaterThan(0); // the order matters for some draws: the test can tell them apart
  });
});

describe('batch loader on the bundled sample', () => {
  it('yields normalised images and 0/1 targets, the same for the same seed', async () => {
    const ds = await scanDataset(SAMPLE);
    expect(ds.ids.length).toBe(44);
    const loader = new BatchLoader(ds, { size: 64, inChannels: 3 });
    const take = async (seed: number) => {
      const out = [];
      for await (const b of loader.batches(ds.ids.slice(0, 10), { batch: 4, rng: new Rng(seed), augment: true })) out.push(b);
      return out;
    };
    const a = await take(1);
    expect(a.map((b) => b.n)).toEqual([4, 4, 2]);
    expect(a[0]!.images.length).toBe(4 * 3 * 64 * 64);
    expect(a[0]!.targets.every((v) => v === 0 || v === 1)).toBe(true);
    const b = await take(1);
    expect(b.map((x) => x.ids)).toEqual(a.map((x) => x.ids));
    expect(b[0]!.images).toEqual(a[0]!.images);
  });
});
