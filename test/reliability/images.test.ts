// The image reader on real files: 16-bit, palette and low-bit-depth PNGs give the right 8-bit values, masks follow
// the documented rules, bombs and non-images are refused from their header (fast, without a large allocation).
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../src/data/dataset.ts';
import { decodeImage, imageSize, MAX_IMAGE_PIXELS, readImageHeader } from '../../src/data/image.ts';
import { binarizeMask, loadSample } from '../../src/data/samples.ts';
import { UserError } from '../../src/errors.ts';
import { jpegBomb, pngBomb, tiffBomb, webpBomb, writePng } from '../support/png.ts';
import { put, tempDir } from './support.ts';

const pixels = async (png: Uint8Array, grey: boolean) => Array.from((await decodeImage(png, { grey })).pixels);

describe('bit depths and palettes decode to the right 8-bit values', () => {
  it('16-bit grey PNG: v8 = round(v16 * 255 / 65535), as grey and as RGB', async () => {
    const v16 = [0, 257, 1000, 32896, 51400, 65280, 65535];
    const png = writePng({ width: v16.length, height: 1, bitDepth: 16, colorType: 0, samples: v16 });
    const expected = v16.map((v) => Math.round((v * 255) / 65535)); // [0, 1, 4, 128, 200, 254, 255]
    expect(await readImageHeader(png)).toMatchObject({ format: 'png', bits: 16, channels: 1, width: 7, height: 1 });
    expect(await pixels(png, true)).toEqual(expected);
    expect(await pixels(png, false)).toEqual(expected.flatMap((v) => [v, v, v]));
  });

  it('16-bit RGB and grey+alpha PNGs: every channel rounded, alpha dropped', async () => {
    const rgb = writePng({ width: 2, height: 1, bitDepth: 16, colorType: 2, samples: [65535, 0, 25700, 1000, 514, 771] });
    expect(await pixels(rgb, false)).toEqual([255, 0, 100, 4, 2, 3]);
    const ga = writePng({ width: 2, height: 1, bitDepth: 16, colorType: 4, samples: [65535, 0, 12850, 65535] });
    expect(await pixels(ga, true)).toEqual([255, 50]);
    expect(await pixels(ga, false)).toEqual([255, 255, 255, 50, 50, 50]);
  });

  it('16-bit mask resized with nearest keeps 0/255', async () => {
    const png = writePng({ width: 2, height: 2, bitDepth: 16, colorType: 0, samples: [0, 65535, 65535, 0] });
    const m = await decodeImage(png, { grey: true, size: 4, kernel: 'nearest' });
    expect(new Set(m.pixels)).toEqual(new Set([0, 255]));
    expect(m.pixels.filter((v) => v === 255).length).toBe(8);
  });

  it('palette PNGs give their palette colours (8-bit and 1-bit indices); a black/white palette mask is 0/255', async () => {
    const palette: [number, number, number][] = [
      [0, 0, 0],
      [255, 255, 255],
      [200, 10, 30],
    ];
    const pal8 = writePng({ width: 4, height: 1, bitDepth: 8, colorType: 3, samples: [0, 1, 2, 1], palette });
    expect(await readImageHeader(pal8)).toMatchObject({ palette: true, bits: 8 });
    expect(await pixels(pal8, false)).toEqual([0, 0, 0, 255, 255, 255, 200, 10, 30, 255, 255, 255]);
    const bw = writePng({ width: 9, height: 1, bitDepth: 1, colorType: 3, samples: [0, 1, 1, 0, 1, 0, 0, 0, 1], palette: palette.slice(0, 2) });
    expect(await pixels(bw, true)).toEqual([0, 255, 255, 0, 255, 0, 0, 0, 255]);
    const out = new Uint8Array(9);
    binarizeMask(new Uint8Array(await pixels(bw, true)), out);
    expect(Array.from(out)).toEqual([0, 1, 1, 0, 1, 0, 0, 0, 1]);
  });

  it('1, 2 and 4-bit grey PNGs are scaled to 0-255', async () => {
    expect(await pixels(writePng({ width: 2, height: 1, bitDepth: 1, colorType: 0, samples: [0, 1] }), true)).toEqual([0, 255]);
    expect(await pixels(writePng({ width: 4, height: 1, bitDepth: 2, colorType: 0, samples: [0, 1, 2, 3] }), true)).toEqual([0, 85, 170, 255]);
    expect(await pixels(writePng({ width: 3, height: 1, bitDepth: 4, colorType: 0, samples: [0, 5, 15] }), true)).toEqual([0, 85, 255]);
  });
});

describe('mask values', () => {
  const bin = (values: number[]) => {
    const out = new Uint8Array(values.length);
    const n = binarizeMask(Uint8Array.from(values), out);
    return { mask: Array.from(out), n };
  };
  it('> 127 is foreground; grey levels (JPEG, anti-aliasing) are thresholded half-way', () => {
    expect(bin([0, 255, 127, 128, 30, 250])).toEqual({ mask: [0, 1, 0, 1, 0, 1], n: 3 });
  });
  it('a 0/1 mask: 1 is foreground', () => {
    expect(bin([0, 1, 1, 0])).toEqual({ mask: [0, 1, 1, 0], n: 2 });
  });
  it('values all at most 127 (a 0/1/2 label map) have no foreground (mobileutr check reports it as an error)', () => {
    expect(bin([0, 1, 2, 100])).toEqual({ mask: [0, 0, 0, 0], n: 0 });
  });

  it('loadSample: 0/1, 0/255 and 16-bit masks give the same targets; a mask of another size is refused from its header', async () => {
    const root = tempDir();
    const w = 32;
    const h = 32;
    const image = await sharp({ create: { width: w, height: h, channels: 3, background: '#404040' } }).png().toBuffer();
    const inside = (i: number) => i % w < 16;
    const files: Record<string, Uint8Array> = {
      b255: writePng({ width: w, height: h, bitDepth: 8, colorType: 0, samples: Array.from({ length: w * h }, (_, i) => (inside(i) ? 255 : 0)) }),
      b01: writePng({ width: w, height: h, bitDepth: 8, colorType: 0, samples: Array.from({ length: w * h }, (_, i) => (inside(i) ? 1 : 0)) }),
      b16: writePng({ width: w, height: h, bitDepth: 16, colorType: 0, samples: Array.from({ length: w * h }, (_, i) => (inside(i) ? 65535 : 0)) }),
      small: writePng({ width: w - 1, height: h, bitDepth: 8, colorType: 0, samples: new Array((w - 1) * h).fill(0) }),
    };
    for (const [id, mask] of Object.entries(files)) {
      put(join(root, 'images', `${id}.png`), image);
      put(join(root, 'masks', '0', `${id}.png`), mask);
    }
    const ds: Dataset = {
      root,
      ids: Object.keys(files),
      classes: 1,
      problems: [],
      imagePath: (id) => join(root, 'images', `${id}.png`),
      maskPath: (id) => join(root, 'masks', '0', `${id}.png`),
    };
    const targets = await Promise.all(['b255', 'b01', 'b16'].map(async (id) => Array.from((await loadSample(ds, id, 16, false)).mask)));
    expect(targets[0]!.filter((v) => v === 1).length).toBe(128);
    expect(targets[1]).toEqual(targets[0]);
    expect(targets[2]).toEqual(targets[0]);
    await expect(loadSample(ds, 'small', 16, false)).rejects.toThrow(/small\.png: mask is 31x32 but its image is 32x32/);
  });
});

describe('files that are not images, or not whole', () => {
  const cases: [string, () => Promise<Uint8Array>, RegExp][] = [
    ['zero bytes', async () => new Uint8Array(0), /empty file \(0 bytes\)/],
    ['text', async () => new TextEncoder().encode('hello, not an image'), /not a readable image \(unknown format\)/],
    ['BMP', async () => Uint8Array.from([0x42, 0x4d, ...new Array(60).fill(0)]), /BMP header has size 0x0/],
    ['SVG', async () => new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'), /unsupported image format "svg"/],
    ['GIF', () => sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } }).gif().toBuffer(), /unsupported image format "gif"/],
    ['PNG cut in its header', async () => (await sharp({ create: { width: 40, height: 30, channels: 3, background: '#123' } }).png().toBuffer()).subarray(0, 20), /not a readable image/],
    [
      'PNG cut in its data',
      async () => {
        const png = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#123' } }).png({ compressionLevel: 0 }).toBuffer();
        return png.subarray(0, png.length >> 1);
      },
      /not a readable image/,
    ],
    [
      'JPEG cut in its data',
      async () => {
        const noise = Uint8Array.from({ length: 300 * 200 * 3 }, (_, i) => (i * 2654435761) >>> 24);
        const jpg = await sharp(noise, { raw: { width: 300, height: 200, channels: 3 } }).jpeg().toBuffer();
        return jpg.subarray(0, jpg.length >> 1);
      },
      /not a readable image/,
    ],
  ];
  it.each(cases)('%s: a UserError naming the file', async (_name, make, pattern) => {
    const bytes = await make();
    const err = await decodeImage(bytes, { label: 'scan.png' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(/^scan\.png: /);
    expect((err as Error).message).toMatch(pattern);
  });

  it('a missing file, a folder, and an unreadable path each say so', async () => {
    const dir = tempDir();
    await expect(decodeImage(join(dir, 'none.png'))).rejects.toThrow(/none\.png: file not found/);
    await expect(decodeImage(dir)).rejects.toThrow(/is a directory/);
    await expect(imageSize(join(dir, 'none.png'))).rejects.toThrow(UserError);
    // a device never ends: refused from its type, not read until memory runs out
    await expect(decodeImage('/dev/zero')).rejects.toThrow('/dev/zero: not a regular file (a device, pipe or socket)');
  });
});

describe('decompression bombs are refused from their header', () => {
  const bombs: [string, () => Promise<Uint8Array>, RegExp][] = [
    ['PNG 100000x100000', async () => pngBomb(100_000, 100_000), /100000x100000 = 10,000,000,000 pixels, over the limit of 67,108,864 pixels/],
    ['PNG 2^31-1 wide', async () => pngBomb(2 ** 31 - 1, 2), /over the limit|not a readable image/],
    ['JPEG 65000x65000', () => jpegBomb(65_000, 65_000), /65000x65000 = 4,225,000,000 pixels/],
    ['WebP 16383x16383', () => webpBomb(), /16383x16383 = 268,402,689 pixels/],
    ['TIFF 65535x65535', () => tiffBomb(65_535, 65_535), /65535x65535/],
  ];
  it.each(bombs)('%s: refused at once, no large allocation', async (_name, make, pattern) => {
    const bytes = await make();
    expect(bytes.length).toBeLessThan(4096);
    const rss = process.memoryUsage.rss();
    const t = performance.now();
    for (const read of [() => decodeImage(bytes, { label: 'bomb' }), () => decodeImage(bytes, { label: 'bomb', grey: true, size: 32 }), () => imageSize(bytes, 'bomb')]) {
      const err = await read().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(pattern);
    }
    expect(performance.now() - t).toBeLessThan(1000);
    expect(process.memoryUsage.rss() - rss).toBeLessThan(64 * 2 ** 20);
  });

  it('the limit is 8192 x 8192 pixels; a caller can lower it', async () => {
    expect(MAX_IMAGE_PIXELS).toBe(8192 * 8192);
    const png = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#000' } }).png().toBuffer();
    await expect(decodeImage(png, { maxPixels: 50_000, label: 'x.png' })).rejects.toThrow('x.png: image is 300x200 = 60,000 pixels, over the limit of 50,000 pixels');
    expect((await decodeImage(png, { maxPixels: 60_000 })).width).toBe(300);
  });

  it('EXIF orientation: the size is the displayed one, for the header and the pixels', async () => {
    const jpg = await sharp({ create: { width: 30, height: 10, channels: 3, background: '#800' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect(await imageSize(jpg)).toEqual({ width: 10, height: 30 });
    const d = await decodeImage(jpg);
    expect([d.width, d.height]).toEqual([10, 30]);
  });
});
