// A strict TypeScript project that depends on the installed package by name: builds MobileUtr, segments a bundled
// sample image, exports the model for the browser page, and prints what it got as JSON.
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createModel, decodeImage, encodePng, exportOnnx, pixelsToTensor, resizeImage, Segmenter, type Segmentation } from 'mobileutr';

const SIZE = 64;
const sample = join(dirname(createRequire(import.meta.url).resolve('mobileutr/package.json')), 'samples/busi-mini/images/benign_001.png');

const summary = (s: Segmentation) => ({
  width: s.width,
  height: s.height,
  foreground: s.mask.reduce((n, v) => n + (v > 0 ? 1 : 0), 0),
  mask: Buffer.from(s.mask).toString('base64'),
  probability: Buffer.from(s.probability).toString('base64'),
});

const model = createModel('mobileutr', { size: SIZE });
const segmenter = await Segmenter.create(model, { threads: 1 });
const original = await segmenter.segment(sample);

// the browser page gets the model and the image at the model size (so both sides do identical arithmetic)
const small = await resizeImage(await decodeImage(sample), SIZE, 'linear');
const png = await encodePng(small.pixels, small.width, small.height, small.channels as 1 | 3);
await mkdir('web/public', { recursive: true });
await writeFile('web/public/model.onnx', await exportOnnx(model));
await writeFile('web/public/image.png', png);
const logits = Array.from(await segmenter.logits(pixelsToTensor(small.pixels, SIZE, SIZE, small.channels, 3), 1));
const atModelSize = await segmenter.segment(png);
await segmenter.release();

console.log(JSON.stringify({ params: model.parameterCount, original: summary(original), atModelSize: { ...summary(atModelSize), logits } }));
