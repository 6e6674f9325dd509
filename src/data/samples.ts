import { UserError } from '../errors.ts';
import type { Dataset } from './dataset.ts';
import { decodeImage, readImageHeader, resizeImage } from './image.ts';
import type { ResizeMode } from './resize.ts';
import { binarizeMask, resizePairCv2, type Pair, type Sample } from './pairs.ts';

export { binarizeMask, resizePairCv2, type Pair, type Sample } from './pairs.ts';

/**
 * Decodes one pair at its stored size. A mask whose size differs from its image is a UserError, found from the
 * mask's header before it is decoded. Mask values: see {@link binarizeMask}.
 */
export async function loadPair(ds: Dataset, id: string, grey: boolean): Promise<Pair> {
  const path = ds.imagePath(id);
  const original = await decodeImage(path, { grey });
  const { width, height } = original;
  const mask = new Uint8Array(ds.classes * width * height);
  for (let k = 0; k < ds.classes; k++) {
    const maskPath = ds.maskPath(id, k);
    const dims = await readImageHeader(maskPath);
    if (dims.width !== width || dims.height !== height)
      throw new UserError(`${maskPath}: mask is ${dims.width}x${dims.height} but its image is ${width}x${height}`);
    const m = await decodeImage(maskPath, { grey: true });
    binarizeMask(m.pixels, mask.subarray(k * width * height, (k + 1) * width * height));
  }
  return { id, width, height, channels: original.channels, image: original.pixels, mask, classes: ds.classes };
}

/**
 * Resizes a pair to size×size: bilinear image, nearest masks. `resize` 'cv2' (default) is the original protocol's
 * cv2.resize (INTER_LINEAR images, INTER_NEAREST masks: resize.ts); 'antialias' is sharp's kernels.
 */
export async function resizePair(p: Pair, size: number, resize: ResizeMode = 'cv2'): Promise<Sample> {
  if (resize === 'cv2') return resizePairCv2(p, size);
  const { width, height, channels } = p;
  const image = await resizeImage({ pixels: p.image, width, height, channels }, size, 'linear', resize);
  const mask = new Uint8Array(p.classes * size * size);
  for (let k = 0; k < p.classes; k++) {
    const plane = p.mask.subarray(k * width * height, (k + 1) * width * height);
    mask.set((await resizeImage({ pixels: plane, width, height, channels: 1 }, size, 'nearest', resize)).pixels, k * size * size);
  }
  return { id: p.id, size, width: size, height: size, channels, image: image.pixels, mask, classes: p.classes };
}

/** Decodes and resizes one pair (see {@link loadPair} and {@link resizePair}). */
export async function loadSample(ds: Dataset, id: string, size: number, grey: boolean, resize: ResizeMode = 'cv2'): Promise<Sample> {
  return resizePair(await loadPair(ds, id, grey), size, resize);
}
