// Builds samples/busi-mini from ../shared/datasets/busi: a small, real sample that ships with the repo.
// Usage: npx tsx scripts/make-sample.ts   (deterministic: same ids, same pixels every run)
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';

const SRC = new URL('../../shared/datasets/busi/', import.meta.url).pathname;
const OUT = new URL('../samples/busi-mini/', import.meta.url).pathname;
const LONG_SIDE = 256;
const PICK = { benign: 24, malignant: 16, normal: 4 };

const rows = readFileSync(`${SRC}metadata.csv`, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
rmSync(OUT, { recursive: true, force: true });
mkdirSync(`${OUT}images`, { recursive: true });
mkdirSync(`${OUT}masks/0`, { recursive: true });
const ids: string[] = [];
for (const [cls, count] of Object.entries(PICK)) {
  // every k-th image of the class, so the sample spans the whole set
  const all = rows.filter((r) => r[1] === cls).map((r) => r[0]!).sort();
  const step = Math.floor(all.length / count);
  for (let i = 0; i < count; i++) ids.push(all[i * step]!);
}
for (const id of ids) {
  const resize = { width: LONG_SIDE, height: LONG_SIDE, fit: 'inside' as const };
  await sharp(`${SRC}images/${id}.png`).resize({ ...resize, kernel: 'lanczos3' }).greyscale().png({ compressionLevel: 9 }).toFile(`${OUT}images/${id}.png`);
  await sharp(`${SRC}masks/0/${id}.png`).resize({ ...resize, kernel: 'nearest' }).greyscale().png({ compressionLevel: 9 }).toFile(`${OUT}masks/0/${id}.png`);
}
const val = ids.filter((_, i) => i % 4 === 3);
writeFileSync(`${OUT}train.txt`, `${ids.filter((id) => !val.includes(id)).join('\n')}\n`);
writeFileSync(`${OUT}val.txt`, `${val.join('\n')}\n`);
console.log(`wrote ${ids.length} pairs to ${OUT} (${val.length} in val.txt)`);
