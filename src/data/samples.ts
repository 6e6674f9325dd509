import { UserError } from '../errors.ts';
import type { Dataset } from './dataset.ts';
import { decodeImage, imageSize, resizeImage } from './image.ts';

/** One training pair at the model size: interleaved 8-bit pixels and one 0/1 plane per mask class. */
export interface Sample {
  id: string;
  size: number;
  channels: number;
  image: Uint8Array;
  mask: Uint8Array;
  classes: number;
}

/**
 * Decodes and resizes one pair (bilinear image, nearest masks). A mask whose size differs from its image is a
 * UserError; mask pixels > 127 are foreground (0/255 masks as in BUSI; other grey levels are thresholded).
 */
export async function loadSample(ds: Dataset, id: string, size: number, grey: boolean): Promise<Sample> {
  const path = ds.imagePath(id);
  const original = await decodeImage(path, { grey });
  const image = await resizeImage(original, size, 'linear');
  const mask = new Uint8Array(ds.classes * size * size);
  for (let k = 0; k < ds.classes; k++) {
    const maskPath = ds.maskPath(id, k);
    const dims = await imageSize(maskPath);
    if (dims.width !== original.width || dims.height !== original.height)
      throw new UserError(`${maskPath}: mask is ${dims.width}x${dims.height} but its image is ${original.width}x${original.height}`);
    const m = await decodeImage(maskPath, { grey: true, size, kernel: 'nearest' });
    const offset = k * size * size;
    for (let i = 0; i < size * size; i++) mask[offset + i] = m.pixels[i]! > 127 ? 1 : 0;
  }
  return { id, size, channels: image.channels, image: image.pixels, mask, classes: ds.classes };
}
