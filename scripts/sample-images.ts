// Many small, distinct images from the bundled BUSI sample, for the queue tests and bench:queue.
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

const SAMPLES = new URL('../samples/busi-mini/images/', import.meta.url).pathname;

/**
 * `n` small, distinct PNGs made from the bundled BUSI sample (44 images): each sample at a few widths, every second
 * one mirrored. Returns their file names, sorted.
 */
export async function sampleImages(dir: string, n: number): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const sources = readdirSync(SAMPLES).filter((f) => f.endsWith('.png')).sort();
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const variant = Math.floor(i / sources.length);
    const src = sources[i % sources.length]!;
    const name = `${String(i).padStart(3, '0')}-${src.replace('.png', '')}-v${variant}.png`;
    let img = sharp(join(SAMPLES, src)).resize({ width: 72 + 16 * variant });
    if (variant % 2 === 1) img = img.flop();
    await img.png().toFile(join(dir, name));
    names.push(name);
  }
  return names.sort();
}

