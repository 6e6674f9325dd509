/** ImageNet statistics, the original protocol's normalisation. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
const GREY_MEAN = 0.449;
const GREY_STD = 0.226;

/**
 * Interleaved 8-bit pixels (HWC, `srcChannels` 1-4) -> normalised float32 CHW with `channels` planes.
 * Colour to grey uses ITU-R BT.601 luma; grey to colour repeats the plane; alpha is ignored.
 */
export function pixelsToTensor(pixels: Uint8Array, width: number, height: number, srcChannels: number, channels: number, out?: Float32Array): Float32Array {
  const plane = width * height;
  const tensor = out ?? new Float32Array(channels * plane);
  const colour = srcChannels >= 3;
  for (let i = 0; i < plane; i++) {
    const p = i * srcChannels;
    if (channels === 1) {
      const grey = colour ? 0.299 * pixels[p]! + 0.587 * pixels[p + 1]! + 0.114 * pixels[p + 2]! : pixels[p]!;
      tensor[i] = (grey / 255 - GREY_MEAN) / GREY_STD;
      continue;
    }
    for (let c = 0; c < channels; c++) {
      const v = colour ? pixels[p + Math.min(c, 2)]! : pixels[p]!;
      const k = Math.min(c, 2);
      tensor[c * plane + i] = (v / 255 - IMAGENET_MEAN[k]!) / IMAGENET_STD[k]!;
    }
  }
  return tensor;
}
