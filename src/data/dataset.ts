import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { UserError } from '../errors.ts';
import { detectVolumeLayout, type VolumeLayout } from './volume/dataset.ts';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp'];

/** A folder in the original layout: `images/<id>.<ext>`, `masks/<k>/<id>.png` for class k. */
export interface Dataset {
  root: string;
  /** Ids that have an image and every class mask, sorted. */
  ids: string[];
  /** Number of mask classes (folders masks/0 .. masks/k-1). */
  classes: number;
  imagePath(id: string): string;
  maskPath(id: string, cls: number): string;
  /** Pairing problems found while scanning (image without mask, mask without image, duplicate ids), one line each naming the file. */
  problems: string[];
}

async function listDir(path: string, what: string): Promise<string[]> {
  try {
    if (!(await stat(path)).isDirectory()) throw new UserError(`${path}: ${what} is not a folder`);
    return (await readdir(path)).filter((f) => !f.startsWith('.'));
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${path}: ${code === 'ENOENT' ? `${what} not found` : `cannot read ${what} (${code})`}`);
  }
}

/** The layouts a dataset folder can have: '2d' (images/ + masks/k/), or a volume layout (see volume/dataset.ts). */
export type DatasetLayout = '2d' | VolumeLayout;

/** Which layout a folder has: nnU-Net v2 (imagesTr/, dataset.json) or volumes (images/<case>.nii.gz), else 2-D. */
export async function detectLayout(root: string): Promise<DatasetLayout> {
  return (await detectVolumeLayout(root)) ?? '2d';
}

/**
 * Scans a dataset folder (images/<id>.<ext> + masks/<k>/<id>.png, or nnU-Net's 2-D layout); a missing or empty folder
 * is a UserError, pairing problems are collected.
 *
 * @example
 * ```ts
 * const dataset = await scanDataset('my-data');
 * console.log(dataset.ids.length, dataset.classes, dataset.problems);
 * ```
 */
export async function scanDataset(root: string): Promise<Dataset> {
  await listDir(root, 'dataset folder');
  const layout = await detectLayout(root);
  if (layout !== '2d')
    throw new UserError(`${root}: a volume dataset (${layout === 'nnunet' ? 'nnU-Net layout' : 'images/<case>.nii.gz'}); this command reads 2-D images (images/<id>.<ext>, masks/<k>/<id>.png)`);
  const imageFiles = (await listDir(join(root, 'images'), 'images folder (expected images/<id>.<ext>)')).filter((f) =>
    IMAGE_EXTENSIONS.includes(extname(f).toLowerCase()),
  );
  if (imageFiles.length === 0) throw new UserError(`${join(root, 'images')}: no images (${IMAGE_EXTENSIONS.join(' ')})`);
  const classFolders = (await listDir(join(root, 'masks'), 'masks folder (expected masks/0/<id>.png)')).filter((f) => /^\d+$/.test(f));
  const classes = classFolders.length;
  if (classes === 0) throw new UserError(`${join(root, 'masks')}: no class folders (expected masks/0/)`);
  for (let k = 0; k < classes; k++)
    if (!classFolders.includes(String(k))) throw new UserError(`${join(root, 'masks')}: class folders must be 0..${classes - 1}, missing masks/${k}`);

  const problems: string[] = [];
  const images = new Map<string, string>();
  for (const f of imageFiles.sort()) {
    const id = f.slice(0, f.length - extname(f).length);
    if (images.has(id)) problems.push(`${join(root, 'images', f)}: duplicate id "${id}" (also ${images.get(id)})`);
    else images.set(id, f);
  }
  const masks: Map<string, string>[] = [];
  for (let k = 0; k < classes; k++) {
    const files = (await listDir(join(root, 'masks', String(k)), `masks/${k} folder`)).filter((f) => IMAGE_EXTENSIONS.includes(extname(f).toLowerCase())).sort();
    const byId = new Map<string, string>();
    for (const f of files) {
      const id = f.slice(0, f.length - extname(f).length);
      if (byId.has(id)) problems.push(`${join(root, 'masks', String(k), f)}: duplicate mask for id "${id}" (also ${byId.get(id)})`);
      else byId.set(id, f);
    }
    masks.push(byId);
    for (const id of masks[k]!.keys()) if (!images.has(id)) problems.push(`${join(root, 'masks', String(k), masks[k]!.get(id)!)}: mask without image`);
  }
  const ids: string[] = [];
  for (const id of images.keys()) {
    const missing = masks.findIndex((m) => !m.has(id));
    if (missing >= 0) problems.push(`${join(root, 'images', images.get(id)!)}: image without mask (expected masks/${missing}/${id}.png)`);
    else ids.push(id);
  }
  return {
    root,
    ids,
    classes,
    problems,
    imagePath: (id) => join(root, 'images', images.get(id)!),
    maskPath: (id, k) => join(root, 'masks', String(k), masks[k]!.get(id)!),
  };
}
