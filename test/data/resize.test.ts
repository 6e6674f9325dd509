// The resize of the original protocol: cv2.resize INTER_LINEAR for images, INTER_NEAREST for masks (DESIGN §4).
// The expected values are facts computed once with Debian's python3-opencv 4.6.0 (numpy 1.24); Python is not
// needed to run these tests.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scanDataset } from '../../src/data/dataset.ts';
import { decodeImage, resizeImage } from '../../src/data/image.ts';
import { resizeLinearCv2, resizeNearestCv2 } from '../../src/data/resize.ts';
import { loadSample } from '../../src/data/samples.ts';
import { pixelsToTensor } from '../../src/pipeline/normalize.ts';
import { toModelInput } from '../../src/pipeline/stages.ts';
import { datasetPath, describeWithDataset } from '../support/datasets.ts';

/** The synthetic image of the facts below: value (37x + 91y + 53c) mod 256 at column x, row y, channel c. */
function synthetic(width: number, height: number, channels: number): Uint8Array {
  const out = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < channels; c++) out[(y * width + x) * channels + c] = (37 * x + 91 * y + 53 * c) % 256;
  return out;
}

// Produced by (python3 = /usr/bin/python3 with Debian's python3-opencv 4.6.0):
//   import cv2, numpy as np
//   def syn(w, h, cn):
//       y, x, c = np.mgrid[0:h, 0:w, 0:cn]
//       a = ((x*37 + y*91 + c*53) % 256).astype(np.uint8)
//       return a[:, :, 0] if cn == 1 else a
//   for (w, h, cn, dw, dh, k) in CASES:
//       print(cv2.resize(syn(w, h, cn), (dw, dh), interpolation=k).flatten().tolist())
const SYNTHETIC: { from: [number, number, number]; to: [number, number]; kind: 'linear' | 'nearest'; what: string; expected: number[] }[] = [
  {
    from: [7, 5, 3],
    to: [4, 3],
    kind: 'linear',
    what: 'shrink, 3 channels',
    expected: [44, 97, 150, 109, 162, 130, 174, 152, 194, 153, 99, 88, 196, 153, 46, 5, 58, 111, 69, 122, 175, 134, 187, 240, 91, 144, 197, 156, 188, 91, 71, 103, 82, 115, 115, 136],
  },
  { from: [7, 5, 3], to: [3, 2], kind: 'linear', what: 'shrink by more than 2 (no antialiasing)', expected: [93, 146, 199, 179, 232, 93, 74, 105, 116, 64, 117, 170, 151, 140, 193, 173, 162, 87] },
  {
    from: [7, 5, 3],
    to: [11, 9],
    kind: 'linear',
    what: 'upscale, border clamping',
    expected: [
      0, 53, 106, 17, 70, 123, 40, 93, 146, 64, 117, 170, 87, 140, 193, 111, 164, 217, 134, 187, 240, 158, 211, 194, 182, 235, 55, 205, 118, 55, 222, 19, 72, 30, 83, 136, 47, 100, 153, 71, 123, 169, 94,
      147, 138, 118, 171, 138, 141, 194, 162, 165, 163, 185, 165, 156, 162, 134, 179, 77, 150, 110, 86, 167, 49, 102, 81, 134, 187, 98, 151, 204, 121, 174, 207, 145, 198, 85, 168, 221, 47, 192, 245, 70,
      215, 124, 94, 177, 64, 110, 55, 88, 115, 58, 96, 136, 75, 100, 153, 131, 184, 123, 148, 149, 140, 161, 111, 151, 113, 135, 84, 105, 158, 69, 128, 181, 92, 152, 115, 116, 137, 86, 139, 70, 110, 163,
      81, 134, 186, 97, 150, 203, 182, 235, 32, 199, 135, 49, 199, 19, 72, 60, 43, 96, 13, 66, 119, 37, 90, 143, 61, 114, 167, 84, 137, 190, 108, 161, 214, 131, 184, 237, 148, 201, 254, 90, 143, 82, 107,
      108, 99, 120, 70, 123, 71, 93, 146, 64, 117, 170, 87, 140, 194, 111, 164, 126, 135, 187, 98, 158, 211, 122, 182, 157, 145, 199, 109, 162, 27, 80, 133, 44, 97, 150, 67, 120, 171, 91, 144, 176, 115,
      157, 192, 138, 163, 215, 143, 186, 94, 157, 210, 35, 180, 233, 59, 204, 133, 82, 220, 46, 99, 77, 131, 184, 94, 147, 200, 118, 171, 208, 141, 194, 123, 165, 156, 100, 188, 71, 124, 104, 94, 93, 65,
      118, 86, 88, 141, 109, 112, 118, 133, 129, 97, 149, 108, 161, 214, 125, 178, 231, 148, 201, 231, 172, 225, 92, 195, 155, 45, 219, 16, 69, 79, 40, 92, 10, 63, 116, 33, 86, 140, 57, 110, 163, 74, 127,
      180,
    ],
  },
  { from: [16, 12, 1], to: [5, 4], kind: 'linear', what: 'grey, shrink by 3', expected: [132, 173, 113, 231, 93, 149, 11, 130, 69, 110, 166, 28, 147, 86, 127, 183, 45, 164, 26, 144] },
  {
    from: [8, 6, 2],
    to: [4, 3],
    kind: 'linear',
    what: 'exact 2x shrink (OpenCV takes INTER_AREA; 2 channels round half to even)',
    expected: [64, 117, 138, 191, 148, 137, 94, 83, 118, 107, 64, 117, 138, 191, 148, 137, 172, 161, 118, 107, 64, 117, 138, 191],
  },
  { from: [7, 5, 1], to: [3, 4], kind: 'nearest', what: 'nearest shrink: floor(dst * scale), not the half-pixel rule', expected: [0, 74, 148, 91, 165, 239, 182, 0, 74, 17, 91, 165] },
  {
    from: [7, 5, 1],
    to: [12, 9],
    kind: 'nearest',
    what: 'nearest upscale',
    expected: [
      0, 0, 37, 37, 74, 74, 111, 148, 148, 185, 185, 222, 0, 0, 37, 37, 74, 74, 111, 148, 148, 185, 185, 222, 91, 91, 128, 128, 165, 165, 202, 239, 239, 20, 20, 57, 91, 91, 128, 128, 165, 165, 202, 239,
      239, 20, 20, 57, 182, 182, 219, 219, 0, 0, 37, 74, 74, 111, 111, 148, 182, 182, 219, 219, 0, 0, 37, 74, 74, 111, 111, 148, 17, 17, 54, 54, 91, 91, 128, 165, 165, 202, 202, 239, 17, 17, 54, 54, 91,
      91, 128, 165, 165, 202, 202, 239, 108, 108, 145, 145, 182, 182, 219, 0, 0, 37, 37, 74,
    ],
  },
];

describe('cv2-compatible resize on synthetic images (facts from OpenCV 4.6)', () => {
  for (const c of SYNTHETIC)
    it(`${c.kind} ${c.from[0]}x${c.from[1]}x${c.from[2]} -> ${c.to[0]}x${c.to[1]}: ${c.what}`, () => {
      const [w, h, cn] = c.from;
      const resize = c.kind === 'linear' ? resizeLinearCv2 : resizeNearestCv2;
      expect(Array.from(resize(synthetic(w, h, cn), w, h, cn, c.to[0], c.to[1]))).toEqual(c.expected);
    });

  it('same size is a copy; bad arguments are RangeErrors', () => {
    const px = synthetic(3, 2, 2);
    const same = resizeLinearCv2(px, 3, 2, 2, 3, 2);
    expect(same).toEqual(px);
    expect(same).not.toBe(px);
    expect(() => resizeLinearCv2(px, 3, 3, 2, 1, 1)).toThrow(RangeError);
    expect(() => resizeNearestCv2(px, 3, 2, 2, 0, 1)).toThrow(RangeError);
  });

  it('a 1-pixel-wide image and a resize to 1x1 follow the border rules', () => {
    // one column: every output column reads it; 1x1 of a 4x4: position (1.5, 1.5) -> mean of the 4 centre pixels
    expect(Array.from(resizeLinearCv2(new Uint8Array([10, 20, 30]), 1, 3, 1, 2, 3))).toEqual([10, 10, 20, 20, 30, 30]);
    const px = Uint8Array.from({ length: 16 }, (_, i) => i * 10);
    expect(Array.from(resizeLinearCv2(px, 4, 4, 1, 1, 1))).toEqual([Math.round((50 + 60 + 90 + 100) / 4)]);
  });

  it('decodeImage, resizeImage and the model input use it by default; sharp antialiases only on request', async () => {
    const [w, h] = [37, 23];
    const px = synthetic(w, h, 3);
    const img = { pixels: px, width: w, height: h, channels: 3 };
    const expected = resizeLinearCv2(px, w, h, 3, 8, 8);
    expect((await resizeImage(img, 8, 'linear')).pixels).toEqual(expected);
    expect((await resizeImage(img, 8, 'nearest')).pixels).toEqual(resizeNearestCv2(px, w, h, 3, 8, 8));
    expect(await toModelInput(img, { inChannels: 3, size: 8 })).toEqual(pixelsToTensor(expected, 8, 8, 3, 3));
    const antialiased = await resizeImage(img, 8, 'linear', 'antialias');
    expect(antialiased.pixels).not.toEqual(expected);
    expect(await toModelInput(img, { inChannels: 3, size: 8, resize: 'antialias' })).toEqual(pixelsToTensor(antialiased.pixels, 8, 8, 3, 3));
  });
});

/** sha256 of the pixels, first 16 hex digits. */
const shortHash = (px: Uint8Array) => createHash('sha256').update(px).digest('hex').slice(0, 16);
const sampled = (px: Uint8Array) => Array.from({ length: 16 }, (_, i) => px[(i * 7919) % px.length]!);

// Produced by (/usr/bin/python3, Debian's python3-opencv 4.6.0; BUSI as in ../shared/datasets/busi/SHA256SUMS):
//   im = cv2.imread(f'{root}/images/{name}.png', cv2.IMREAD_GRAYSCALE)     # masks: f'{root}/masks/0/{name}.png'
//   out = cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR).flatten()   # masks: cv2.INTER_NEAREST
//   print(int(out.sum()), hashlib.sha256(out.tobytes()).hexdigest()[:16], [int(out[(i*7919) % out.size]) for i in range(16)])
// On this build our output equals OpenCV's bit for bit on all 780 BUSI images (256 and 128, images and masks). The
// target is 1 grey level (OpenCV's own builds differ by that much: its scalar and SIMD rounding), so the sampled
// pixels and the mean are checked with that tolerance, and exactness separately.
const BUSI: { name: string; kind: 'image' | 'mask'; from: [number, number]; to: [number, number]; sum: number; hash: string; pixels: number[] }[] = [
  { name: 'benign_001', kind: 'image', from: [562, 471], to: [256, 256], sum: 8664946, hash: '49c6882ef5f0ae2e', pixels: [47, 227, 163, 195, 141, 155, 132, 65, 30, 136, 151, 182, 164, 166, 124, 40] },
  { name: 'benign_001', kind: 'image', from: [562, 471], to: [128, 128], sum: 2166814, hash: '0daac5cdd5be3476', pixels: [16, 156, 43, 160, 37, 152, 35, 254, 39, 211, 62, 65, 84, 150, 76, 184] },
  { name: 'malignant_001', kind: 'image', from: [449, 598], to: [256, 256], sum: 7743377, hash: '792cd02534e8509a', pixels: [2, 195, 156, 62, 40, 119, 132, 131, 54, 231, 187, 110, 61, 74, 106, 87] },
  { name: 'normal_001', kind: 'image', from: [568, 470], to: [1024, 900], sum: 77008494, hash: '64f9c47b16bd9c8e', pixels: [0, 153, 142, 190, 183, 175, 125, 120, 158, 111, 169, 142, 162, 122, 70, 71] },
  { name: 'malignant_001', kind: 'mask', from: [449, 598], to: [256, 256], sum: 5656920, hash: '539309bd811257b4', pixels: [0, 0, 0, 255, 255, 255, 0, 0, 0, 0, 0, 255, 255, 255, 0, 0] },
  { name: 'benign_001', kind: 'mask', from: [562, 471], to: [128, 128], sum: 15300, hash: 'da0af84808e59c7a', pixels: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 0] },
];

describeWithDataset('busi', 'cv2-compatible resize on BUSI images (facts from OpenCV 4.6)', () => {
  const busi = datasetPath('busi');
  const file = (c: (typeof BUSI)[number]) => join(busi, c.kind === 'image' ? 'images' : 'masks/0', `${c.name}.png`);
  const resized = async (c: (typeof BUSI)[number]) => {
    const d = await decodeImage(file(c), { grey: true });
    expect([d.width, d.height]).toEqual(c.from);
    const resize = c.kind === 'image' ? resizeLinearCv2 : resizeNearestCv2;
    return resize(d.pixels, d.width, d.height, 1, c.to[0], c.to[1]);
  };

  for (const c of BUSI)
    it(`${c.kind} ${c.name} ${c.from.join('x')} -> ${c.to.join('x')}: within 1 grey level of cv2, and equal`, async () => {
      const out = await resized(c);
      expect(out.length).toBe(c.to[0] * c.to[1]);
      for (const [i, v] of sampled(out).entries()) expect(Math.abs(v - c.pixels[i]!), `sampled pixel ${i}`).toBeLessThanOrEqual(c.kind === 'mask' ? 0 : 1);
      const sum = out.reduce((a, v) => a + v, 0);
      expect(Math.abs(sum - c.sum) / out.length).toBeLessThanOrEqual(c.kind === 'mask' ? 0 : 1);
      expect(shortHash(out), 'bit-exact with OpenCV 4.6').toBe(c.hash);
    });

  it('decodeImage with a size (masks in check), loadSample (training, evaluation) and the model input (prediction) give the same pixels', async () => {
    const image = BUSI[1]!; // benign_001 at 128
    const mask = BUSI[5]!;
    const expected = await resized(image);
    expect(shortHash((await decodeImage(file(image), { grey: true, size: 128 })).pixels)).toBe(image.hash);
    expect(shortHash((await decodeImage(file(mask), { grey: true, size: 128, kernel: 'nearest' })).pixels)).toBe(mask.hash);
    const root = mkdtempSync(join(tmpdir(), 'mobileutr-busi1-'));
    try {
      mkdirSync(join(root, 'images'));
      mkdirSync(join(root, 'masks', '0'), { recursive: true });
      copyFileSync(file(image), join(root, 'images', 'benign_001.png'));
      copyFileSync(file(mask), join(root, 'masks', '0', 'benign_001.png'));
      const sample = await loadSample(await scanDataset(root), 'benign_001', 128, true);
      expect(shortHash(sample.image)).toBe(image.hash);
      expect(sample.mask.reduce((a, v) => a + v, 0)).toBe(mask.sum / 255); // the 0/255 mask as 0/1 targets
      const original = await decodeImage(file(image), { grey: true });
      expect(await toModelInput(original, { inChannels: 1, size: 128 })).toEqual(pixelsToTensor(expected, 128, 128, 1, 1));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
