// The browser's `mobileutr check` for picked files: pairing, every image and mask decoded, sizes, mask values (the
// same rules and wording as check.ts, from mask-findings.ts), colour masks, and duplicate images across ids.
import type { Finding, Severity } from '../../data/check.ts';
import { colourMaskFinding, maskValueFindings } from '../../data/mask-findings.ts';
import type { BrowserDataset } from './dataset.ts';
import { decodeRgba, rgbaToChannels, type DecodedRgba } from './decode.ts';

export interface BrowserCheckReport {
  findings: Finding[];
  images: number;
  classes: number;
  /** Pairs with every file decoded, sizes matching and no error. */
  usable: number;
  counts: Record<Severity, number>;
}

const formatOf = (path: string) => (/\.jpe?g$/i.test(path) ? 'jpeg' : /\.webp$/i.test(path) ? 'webp' : 'png');

async function sha256(file: Blob): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Checks every pair of the dataset (decoding all files); `size` also reports foregrounds that vanish at that size. */
export async function checkBrowserDataset(dataset: BrowserDataset, o: { size?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<BrowserCheckReport> {
  const findings: Finding[] = dataset.problems.map((p) => {
    const at = p.indexOf(': ');
    return { severity: 'error', path: p.slice(0, at), message: p.slice(at + 2) };
  });
  const hashes = new Map<string, string>();
  let usable = 0;
  for (const [n, id] of dataset.ids.entries()) {
    const pair = dataset.pairs.get(id)!;
    const before = findings.length;
    const add = (severity: Severity, path: string, message: string) => findings.push({ severity, path, message });
    let image: DecodedRgba | undefined;
    try {
      image = await decodeRgba(pair.image.file, pair.image.path);
      const hash = await sha256(pair.image.file);
      const first = hashes.get(hash);
      if (first) add('warning', pair.image.path, `same bytes as ${first} (a duplicate image under another id could land in both train and val)`);
      else hashes.set(hash, pair.image.path);
    } catch (e) {
      add('error', pair.image.path, (e as Error).message.replace(`${pair.image.path}: `, ''));
    }
    const seen = new Set<Blob>();
    for (const m of pair.masks) {
      if (seen.has(m.file.file)) continue;
      seen.add(m.file.file);
      try {
        const mask = await decodeRgba(m.file.file, m.file.path);
        if (image && (mask.width !== image.width || mask.height !== image.height)) {
          add('error', m.file.path, `mask is ${mask.width}x${mask.height} but its image is ${image.width}x${image.height}`);
          continue;
        }
        if (m.value !== null) {
          const values = new Set<number>();
          for (let i = 0; i < mask.width * mask.height; i++) values.add(mask.pixels[i * 4]!);
          const known = new Set([0, ...pair.masks.map((x) => x.value)]);
          const unknown = [...values].filter((v) => !known.has(v));
          if (unknown.length > 0) add('warning', m.file.path, `label values ${unknown.slice(0, 5).join(', ')} are not in dataset.json's labels (read as background)`);
          continue;
        }
        const grey = rgbaToChannels(mask, 1);
        for (const f of maskValueFindings(grey, mask.width, mask.height, { format: formatOf(m.file.path), size: o.size })) add(f.severity, m.file.path, f.message);
        let colour = 0;
        for (let i = 0; i < mask.width * mask.height; i++) if (mask.pixels[i * 4] !== mask.pixels[i * 4 + 1] || mask.pixels[i * 4 + 1] !== mask.pixels[i * 4 + 2]) colour++;
        for (const f of colourMaskFinding(colour)) add(f.severity, m.file.path, f.message);
      } catch (e) {
        add('error', m.file.path, (e as Error).message.replace(`${m.file.path}: `, ''));
      }
    }
    if (!findings.slice(before).some((f) => f.severity === 'error')) usable++;
    o.onProgress?.(n + 1, dataset.ids.length);
  }
  const counts: Record<Severity, number> = { error: 0, warning: 0, info: 0 };
  for (const f of findings) counts[f.severity]++;
  return { findings, images: dataset.ids.length, classes: dataset.classes, usable, counts };
}
