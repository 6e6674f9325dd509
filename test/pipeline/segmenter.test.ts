import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.ts';
import { createModel } from '../../src/models/model.ts';
import { pixelsToTensor } from '../../src/pipeline/normalize.ts';
import { logitsToMask } from '../../src/pipeline/postprocess.ts';
import { Segmenter } from '../../src/pipeline/segmenter.ts';

async function png(width: number, height: number, channels: 1 | 3): Promise<Buffer> {
  const pixels = new Uint8Array(width * height * channels).map((_, i) => (i * 37) % 251);
  return sharp(pixels, { raw: { width, height, channels } }).png().toBuffer();
}

describe('Segmenter (Node inference API)', () => {
  it('returns a mask at the original image size', async () => {
    const seg = await Segmenter.create(createModel('mobileutr', { size: 32 }));
    const result = await seg.segment(await png(50, 37, 3));
    expect([result.width, result.height]).toEqual([50, 37]);
    expect(result.mask.length).toBe(50 * 37);
    expect(result.probability.length).toBe(50 * 37);
    expect(result.mask.every((v) => v === 0 || v === 255)).toBe(true);
    await seg.release();
  });

  it('takes grey images for colour models and colour images for 1-channel models', async () => {
    const colour = await Segmenter.create(createModel('mobileutr', { size: 32 }));
    expect((await colour.segment(await png(32, 32, 1))).mask.length).toBe(1024);
    const grey = await Segmenter.create(createModel('mobileutr', { size: 32, inChannels: 1 }));
    expect((await grey.segment(await png(40, 40, 3))).mask.length).toBe(1600);
  });

  it('a file that is not an image is a UserError', async () => {
    const seg = await Segmenter.create(createModel('mobileutr', { size: 32 }));
    await expect(seg.segment(new TextEncoder().encode('not an image'))).rejects.toThrow(UserError);
  });

  it('normalises with ImageNet mean/std', () => {
    const t = pixelsToTensor(new Uint8Array([255, 0, 128]), 1, 1, 3, 3);
    expect(t[0]).toBeCloseTo((1 - 0.485) / 0.229, 5);
    expect(t[1]).toBeCloseTo((0 - 0.456) / 0.224, 5);
    expect(t[2]).toBeCloseTo((128 / 255 - 0.406) / 0.225, 5);
  });

  it('thresholds binary logits at 0 and takes the arg-max of multi-class logits', () => {
    expect(Array.from(logitsToMask(new Float32Array([-1, 0.5, 0, 3]), 1, 4))).toEqual([0, 255, 0, 255]);
    expect(Array.from(logitsToMask(new Float32Array([1, 0, 0, 2, 0, 3]), 3, 2))).toEqual([0, 2]);
  });
});

describe('image resizing keeps the channel count', () => {
  it('grey stays grey, colour stays colour', async () => {
    const { decodeImage, resizeImage } = await import('../../src/data/image.ts');
    const grey = await decodeImage(await png(20, 10, 3), { grey: true });
    expect(grey.channels).toBe(1);
    const g = await resizeImage(grey, 16, 'linear');
    expect([g.channels, g.pixels.length]).toEqual([1, 256]);
    const c = await resizeImage(await decodeImage(await png(20, 10, 1)), 16, 'nearest');
    expect([c.channels, c.pixels.length]).toEqual([3, 768]);
  });
});

describe('BMP images', () => {
  /** A 24-bit bottom-up BMP, 2x2: top row red, green; bottom row blue, white. */
  function bmp2x2(): Uint8Array {
    const row = 8; // 2 pixels x 3 bytes, padded to 4
    const data = 54 + row * 2;
    const b = new Uint8Array(data);
    const v = new DataView(b.buffer);
    b.set([0x42, 0x4d]);
    v.setUint32(2, data, true);
    v.setUint32(10, 54, true);
    v.setUint32(14, 40, true);
    v.setInt32(18, 2, true);
    v.setInt32(22, 2, true);
    v.setUint16(26, 1, true);
    v.setUint16(28, 24, true);
    v.setUint32(34, row * 2, true);
    b.set([255, 0, 0, 255, 255, 255], 54); // bottom row first, BGR: blue, white
    b.set([0, 0, 255, 0, 255, 0], 54 + row); // top row: red, green
    return b;
  }

  it('decode with the right colours and orientation', async () => {
    const { decodeImage } = await import('../../src/data/image.ts');
    const img = await decodeImage(bmp2x2());
    expect([img.width, img.height, img.channels]).toEqual([2, 2, 3]);
    expect(Array.from(img.pixels)).toEqual([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
  });
});
