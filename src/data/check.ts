/**
 * `mobileutr check`: every problem of a dataset folder in one pass. Unlike `scanDataset` (which stops at the first
 * structural problem), this collects: folder layout, pairing, duplicate ids, every image and mask decoded, mask
 * sizes against their images, mask values, byte-identical images, split files.
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { colourMaskFinding, maskValueFindings } from './mask-findings.ts';
import { UserError } from '../errors.ts';
import { IMAGE_EXTENSIONS, detectLayout, type DatasetLayout } from './dataset.ts';
import { decodeImage, readImageFile, readImageHeader, type ImageHeader } from './image.ts';
import { readSplitFile } from './split.ts';
import { checkVolumeDataset } from './volume/check.ts';

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  severity: Severity;
  /** The file or folder the finding is about. */
  path: string;
  message: string;
}

export interface CheckReport {
  root: string;
  /** The layout found; for volume layouts images counts cases, masks label maps, classes dataset.json's labels. */
  layout?: DatasetLayout;
  findings: Finding[];
  /** Files with an image extension in images/. */
  images: number;
  /** Files with an image extension in masks/<k>/. */
  masks: number;
  classes: number;
  /** Ids with one image and every mask, all decoded, sizes matching, no error about them. */
  usable: number;
  counts: Record<Severity, number>;
}

export interface CheckOptions {
  /** Model input size: also reports masks whose foreground vanishes when resized to size × size (nearest). */
  size?: number;
  /** Files decoded at once (default 2). */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Split files looked for in the dataset folder. */
export const SPLIT_FILES = ['train.txt', 'val.txt', 'test.txt'];

const isImageFile = (f: string) => IMAGE_EXTENSIONS.includes(extname(f).toLowerCase());
const idOf = (f: string) => f.slice(0, f.length - extname(f).length);

type Listing = { files: string[]; dirs: string[] } | undefined;

async function listFolder(path: string, what: string, add: (s: Severity, p: string, m: string) => void): Promise<Listing> {
  try {
    const info = await stat(path);
    if (!info.isDirectory()) {
      add('error', path, `${what} is a file, not a folder`);
      return undefined;
    }
    const entries = (await readdir(path, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
    return {
      files: entries.filter((e) => !e.isDirectory()).map((e) => e.name).sort(),
      dirs: entries.filter((e) => e.isDirectory()).map((e) => e.name).sort(),
    };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    add('error', path, code === 'ENOENT' ? `${what} not found` : `cannot read ${what} (${code ?? (e as Error).message})`);
    return undefined;
  }
}

/** Runs `fn` over items, `concurrency` at a time, keeping results in order. */
async function mapLimit<T, R>(items: readonly T[], concurrency: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

interface FileResult {
  header?: ImageHeader;
  sha1?: string;
  findings: Finding[];
  ok: boolean;
}

/** What decoding did with a TIFF whose photometric tag says grey but whose samples are RGB (see ImageHeader). */
function greyTiffFinding(path: string, header: ImageHeader): Finding[] {
  if (!header.greyTiffWithColourSamples) return [];
  const message = `TIFF tagged grey (PhotometricInterpretation min-is-black) stores ${header.channels} samples per pixel: decoded as RGB from its stored samples (a reader that trusts the tag sees only the first one, as grey)`;
  return [{ severity: 'warning', path, message }];
}

async function checkImage(path: string): Promise<FileResult> {
  const findings: Finding[] = [];
  try {
    const bytes = await readImageFile(path);
    const header = await readImageHeader(bytes, { label: path });
    await decodeImage(bytes, { label: path }); // every pixel: truncation and corruption show here
    findings.push(...greyTiffFinding(path, header));
    return { header, sha1: createHash('sha1').update(bytes).digest('hex'), findings, ok: true };
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    findings.push(userFinding(e, path));
    return { findings, ok: false };
  }
}

/** A UserError from the readers as a finding: their messages start with the path. */
function userFinding(e: UserError, path: string): Finding {
  const message = e.message.startsWith(`${path}: `) ? e.message.slice(path.length + 2) : e.message;
  return { severity: 'error', path, message };
}

async function checkMask(path: string, image: ImageHeader | undefined, size: number | undefined): Promise<FileResult> {
  const findings: Finding[] = [];
  const add = (severity: Severity, message: string) => findings.push({ severity, path, message });
  try {
    const bytes = await readImageFile(path);
    const header = await readImageHeader(bytes, { label: path });
    if (image && (header.width !== image.width || header.height !== image.height)) {
      add('error', `mask is ${header.width}x${header.height} but its image is ${image.width}x${image.height}`);
      await decodeImage(bytes, { label: path, grey: true }); // still report a corrupt file as such
      return { header, findings, ok: false };
    }
    const grey = await decodeImage(bytes, { label: path, grey: true });
    findings.push(...greyTiffFinding(path, header));
    for (const f of maskValueFindings(grey.pixels, grey.width, grey.height, { format: header.format, size })) add(f.severity, f.message);
    if (header.channels >= 3 || header.palette) {
      const rgb = await decodeImage(bytes, { label: path });
      let colour = 0;
      for (let i = 0; i < rgb.pixels.length; i += 3) if (rgb.pixels[i] !== rgb.pixels[i + 1] || rgb.pixels[i + 1] !== rgb.pixels[i + 2]) colour++;
      for (const f of colourMaskFinding(colour)) add(f.severity, f.message);
    }
    return { header, findings, ok: !findings.some((f) => f.severity === 'error') };
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    findings.push(userFinding(e, path));
    return { findings, ok: false };
  }
}

/**
 * Checks a dataset folder (images/<id>.<ext>, masks/<k>/<id>.<ext>) and returns every finding, in a stable order.
 *
 * @example
 * ```ts
 * const report = await checkDataset('my-data', { size: 256 });
 * for (const f of report.findings) console.log(f.severity, f.message);
 * ```
 */
export async function checkDataset(root: string, o: CheckOptions = {}): Promise<CheckReport> {
  const findings: Finding[] = [];
  const add = (severity: Severity, path: string, message: string) => findings.push({ severity, path, message });
  const report = (classes = 0, images = 0, masks = 0, usable = 0): CheckReport => {
    const counts = { error: 0, warning: 0, info: 0 };
    for (const f of findings) counts[f.severity]++;
    return { root, findings, images, masks, classes, usable, counts };
  };

  try {
    if (!(await stat(root)).isDirectory()) throw new UserError(`${root}: not a folder (expected a dataset folder with images/ and masks/0/)`);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${root}: ${code === 'ENOENT' ? 'dataset folder not found' : `cannot read the dataset folder (${code})`}`);
  }
  if ((await detectLayout(root)) !== '2d') return checkVolumeDataset(root, o);
  const top = await listFolder(root, 'dataset folder', add);
  if (top && top.files.length + top.dirs.length === 0) {
    add('error', root, 'dataset folder is empty (expected images/<id>.<ext> and masks/0/<id>.png)');
    return report();
  }

  // layout
  const imagesDir = join(root, 'images');
  const imagesListing = await listFolder(imagesDir, 'images folder (expected images/<id>.<ext>)', add);
  const imageFiles: string[] = [];
  if (imagesListing) {
    for (const d of imagesListing.dirs) add('info', join(imagesDir, d), 'folder ignored (images are read from images/ itself)');
    for (const f of imagesListing.files) {
      if (isImageFile(f)) imageFiles.push(f);
      else add('info', join(imagesDir, f), `ignored: not an image extension (${IMAGE_EXTENSIONS.join(' ')})`);
    }
    if (imageFiles.length === 0) add('error', imagesDir, `no images (${IMAGE_EXTENSIONS.join(' ')})`);
  }
  const masksDir = join(root, 'masks');
  const masksListing = await listFolder(masksDir, 'masks folder (expected masks/0/<id>.png)', add);
  const classDirs: number[] = [];
  if (masksListing) {
    for (const d of masksListing.dirs) {
      if (/^\d+$/.test(d)) classDirs.push(Number(d));
      else add('info', join(masksDir, d), 'folder ignored (class folders are named 0, 1, ...)');
    }
    for (const f of masksListing.files) add('info', join(masksDir, f), 'ignored: masks go in class folders (masks/0/<id>.png)');
    classDirs.sort((a, b) => a - b);
    if (classDirs.length === 0) add('error', masksDir, 'no class folders (expected masks/0/)');
    const max = classDirs.at(-1) ?? -1;
    for (let k = 0; k <= max; k++) if (!classDirs.includes(k)) add('error', join(masksDir, String(k)), `class folder missing (class folders must be 0..${max})`);
  }

  // pairing
  const images = new Map<string, string>();
  const duplicated = new Set<string>();
  for (const f of imageFiles) {
    const id = idOf(f);
    if (images.has(id)) {
      add('error', join(imagesDir, f), `duplicate id "${id}" (also ${images.get(id)})`);
      duplicated.add(id);
    } else images.set(id, f);
  }
  const masks = new Map<number, Map<string, string>>();
  let maskCount = 0;
  for (const k of classDirs) {
    const dir = join(masksDir, String(k));
    const listing = await listFolder(dir, `masks/${k} folder`, add);
    const byId = new Map<string, string>();
    masks.set(k, byId);
    if (!listing) continue;
    for (const d of listing.dirs) add('info', join(dir, d), 'folder ignored');
    for (const f of listing.files) {
      if (!isImageFile(f)) {
        add('info', join(dir, f), `ignored: not an image extension (${IMAGE_EXTENSIONS.join(' ')})`);
        continue;
      }
      maskCount++;
      const id = idOf(f);
      if (byId.has(id)) {
        add('error', join(dir, f), `duplicate mask for id "${id}" (also ${byId.get(id)})`);
        duplicated.add(id);
      } else byId.set(id, f);
    }
    for (const [id, f] of byId) if (!images.has(id)) add('error', join(dir, f), 'mask without image');
  }
  const paired = new Set<string>();
  for (const [id, f] of images) {
    const missing = classDirs.filter((k) => !masks.get(k)!.has(id));
    if (missing.length > 0) add('error', join(imagesDir, f), `image without mask (expected ${missing.map((k) => `masks/${k}/${id}.png`).join(', ')})`);
    else if (classDirs.length > 0) paired.add(id);
  }

  // every file decoded: images (with their masks), then masks without images
  const ids = [...images.keys()];
  const orphans = [...masks].flatMap(([k, byId]) => [...byId].filter(([id]) => !images.has(id)).map(([, f]) => join(masksDir, String(k), f)));
  const total = ids.length + orphans.length;
  let done = 0;
  const perId = await mapLimit(ids, o.concurrency ?? 2, async (id) => {
    const imagePath = join(imagesDir, images.get(id)!);
    const image = await checkImage(imagePath);
    const maskResults: FileResult[] = [];
    for (const k of classDirs) {
      const f = masks.get(k)!.get(id);
      if (f) maskResults.push(await checkMask(join(masksDir, String(k), f), image.header, o.size));
    }
    o.onProgress?.(++done, total);
    return { id, imagePath, image, masks: maskResults };
  });
  const orphanResults = await mapLimit(orphans, o.concurrency ?? 2, async (path) => {
    const r = await checkMask(path, undefined, o.size);
    o.onProgress?.(++done, total);
    return r;
  });

  const byHash = new Map<string, string>();
  let usable = 0;
  for (const r of perId) {
    findings.push(...r.image.findings);
    if (r.image.sha1) {
      const first = byHash.get(r.image.sha1);
      if (first) add('warning', r.imagePath, `same bytes as ${first} (a duplicate image under another id could land in both train and val)`);
      else byHash.set(r.image.sha1, r.imagePath);
    }
    for (const m of r.masks) findings.push(...m.findings);
    if (paired.has(r.id) && !duplicated.has(r.id) && r.image.ok && r.masks.every((m) => m.ok)) usable++;
  }
  for (const r of orphanResults) findings.push(...r.findings);

  // split files next to the data
  const lists = new Map<string, Set<string>>();
  for (const name of SPLIT_FILES) {
    const path = join(root, name);
    const exists = await stat(path).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!exists) continue;
    try {
      lists.set(name, new Set(await readSplitFile(path, [...paired])));
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      const rest = e.message.startsWith(path) ? e.message.slice(path.length) : `: ${e.message}`;
      const line = /^:(\d+): (.*)$/s.exec(rest);
      if (line) add('error', `${path}:${line[1]}`, line[2]!);
      else add('error', path, rest.replace(/^: /, ''));
    }
  }
  const names = [...lists.keys()];
  for (let a = 0; a < names.length; a++)
    for (let b = a + 1; b < names.length; b++) {
      const both = [...lists.get(names[a]!)!].filter((id) => lists.get(names[b]!)!.has(id));
      if (both.length > 0)
        add('error', join(root, names[b]!), `${both.length === 1 ? '1 id is' : `${both.length} ids are`} also in ${names[a]} (first: "${both[0]}"): the same image in two splits`);
    }

  return report(classDirs.length, imageFiles.length, maskCount, usable);
}
