// TIFF colour: a file whose PhotometricInterpretation says grey (min-is-black) but which stores 3 samples per pixel,
// as some public endoscopy datasets ship, decodes to its stored RGB samples instead of silently to grey.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, readImageHeader, tiffSampleLayout } from '../../src/data/image.ts';
import { setPhotometric, writeTiff } from '../support/tiff.ts';

const W = 5;
const H = 4;
/** Stored samples with three different channels, so that grey (one channel repeated) cannot pass for them. */
const RGB = Uint8Array.from({ length: W * H * 3 }, (_, i) => (i % 3 === 0 ? 200 - i : i % 3 === 1 ? 3 * i : (i * 37 + 11) % 256));

const greyTagged = (o: { bits?: 8 | 16; data?: ArrayLike<number>; samples?: number; extraSamples?: number[]; bigEndian?: boolean } = {}) =>
  writeTiff({ width: W, height: H, samples: o.samples ?? 3, bits: o.bits ?? 8, photometric: 1, data: o.data ?? RGB, extraSamples: o.extraSamples, bigEndian: o.bigEndian });

describe('a TIFF tagged min-is-black with 3 samples per pixel', () => {
  it('decodes to the stored RGB samples (both byte orders), and its header says so', async () => {
    for (const bigEndian of [false, true]) {
      const tif = greyTagged({ bigEndian });
      expect(tiffSampleLayout(tif)).toEqual({ photometric: 1, samplesPerPixel: 3, extraSamples: 0 });
      const header = await readImageHeader(tif);
      expect(header).toMatchObject({ format: 'tiff', width: W, height: H, channels: 3, bits: 8, hasAlpha: false, greyTiffWithColourSamples: true });
      const decoded = await decodeImage(tif);
      expect(decoded.channels).toBe(3);
      expect(Array.from(decoded.pixels)).toEqual(Array.from(RGB));
    }
  });

  it('as grey (masks, 1-channel models) it gives what the same RGB pixels give from a PNG', async () => {
    const png = await sharp(RGB, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
    expect((await decodeImage(greyTagged(), { grey: true })).pixels).toEqual((await decodeImage(png, { grey: true })).pixels);
    expect((await decodeImage(greyTagged(), { size: 3 })).pixels).toEqual((await decodeImage(png, { size: 3 })).pixels);
  });

  it('compressed files written by libvips with the tag changed afterwards decode the same', async () => {
    for (const compression of ['lzw', 'deflate', 'packbits'] as const) {
      const tif = setPhotometric(await sharp(RGB, { raw: { width: W, height: H, channels: 3 } }).tiff({ compression }).toBuffer(), 1);
      expect((await readImageHeader(tif)).greyTiffWithColourSamples, compression).toBe(true);
      expect(Array.from((await decodeImage(tif)).pixels), compression).toEqual(Array.from(RGB));
    }
  });

  it('16-bit samples are rounded to 8 bits (v * 255 / 65535); a 4th sample is dropped like alpha', async () => {
    const wide = Array.from(RGB, (v, i) => Math.min(65535, Math.max(0, v * 257 + (i % 2 ? 100 : -100))));
    const decoded = await decodeImage(greyTagged({ bits: 16, data: wide }));
    expect(Array.from(decoded.pixels)).toEqual(wide.map((v) => Math.round(v / 257)));
    const four = Array.from({ length: W * H * 4 }, (_, i) => (i % 4 === 3 ? 255 : RGB[(i >> 2) * 3 + (i % 4)]!));
    const header = await readImageHeader(greyTagged({ samples: 4, data: four }));
    expect([header.greyTiffWithColourSamples, header.hasAlpha]).toEqual([true, true]);
    expect(Array.from((await decodeImage(greyTagged({ samples: 4, data: four }))).pixels)).toEqual(Array.from(RGB));
  });

  it('grey TIFFs that say what they store are left alone: 1 sample, or grey with declared extra samples', async () => {
    const grey = writeTiff({ width: W, height: H, samples: 1, bits: 8, photometric: 1, data: RGB.subarray(0, W * H) });
    expect((await readImageHeader(grey)).greyTiffWithColourSamples).toBe(false);
    expect(Array.from((await decodeImage(grey, { grey: true })).pixels)).toEqual(Array.from(RGB.subarray(0, W * H)));
    const declared = greyTagged({ extraSamples: [0, 0] });
    expect((await readImageHeader(declared)).greyTiffWithColourSamples).toBe(false);
    const rgb = writeTiff({ width: W, height: H, samples: 3, bits: 8, photometric: 2, data: RGB });
    expect((await readImageHeader(rgb)).greyTiffWithColourSamples).toBe(false);
    expect(Array.from((await decodeImage(rgb)).pixels)).toEqual(Array.from(RGB));
  });
});
