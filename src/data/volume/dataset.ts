/**
 * Volume datasets (CT, MRI) in either of two layouts, found from the folder itself (see `detectLayout` in
 * ../dataset.ts):
 * - nnU-Net v2: `imagesTr/<case>_0000.nii.gz` (channels `_0001`, ...), `labelsTr/<case>.nii.gz`, `imagesTs/`,
 *   `dataset.json` with `labels` (name -> value, background 0) and `file_ending`;
 * - ours: `images/<case>.nii.gz` (or `images/<case>/` holding one DICOM series) and `labels/<case>.nii.gz`.
 *
 * @example
 *   const ds = await scanVolumeDataset('Dataset004_Hippocampus');
 *   for (const c of ds.cases) await readVolume(c.images[0]!);
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.ts';

export type VolumeLayout = 'nnunet' | 'volumes';

export interface VolumeCase {
  id: string;
  /** One path per input channel (a NIfTI file or a DICOM series folder). */
  images: string[];
  /** The label map, when the case has one. */
  label?: string;
}

export interface VolumeDataset {
  root: string;
  layout: VolumeLayout;
  /** Training cases that have every channel and a label map, sorted by id. */
  cases: VolumeCase[];
  /** Cases without labels (nnU-Net imagesTs/). */
  testCases: VolumeCase[];
  /** Label names by value, from dataset.json (background 0 included); undefined without a dataset.json. */
  labels?: Map<number, string>;
  /** Input channel names from dataset.json `channel_names` (index order), else ['0'] or one per channel found. */
  channels: string[];
  /** Pairing and layout problems (a channel missing, an image without label, a label without image), one line each. */
  problems: string[];
}

const NIFTI = /\.nii(\.gz)?$/i;
const stripNifti = (f: string) => f.replace(NIFTI, '');

async function entries(path: string): Promise<{ files: string[]; dirs: string[] } | undefined> {
  try {
    const list = (await readdir(path, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
    // a symbolic link counts as what it points to (a linked DICOM series folder is a case)
    const dir = await Promise.all(list.map((e) => (e.isSymbolicLink() ? isDir(join(path, e.name)) : e.isDirectory())));
    return {
      files: list.filter((_, i) => !dir[i]).map((e) => e.name).sort(),
      dirs: list.filter((_, i) => dir[i]).map((e) => e.name).sort(),
    };
  } catch {
    return undefined;
  }
}

const isDir = (path: string) => stat(path).then((s) => s.isDirectory(), () => false);
const isFile = (path: string) => stat(path).then((s) => s.isFile(), () => false);

/** What a folder looks like: a volume layout, or undefined (then the 2-D layout applies). */
export async function detectVolumeLayout(root: string): Promise<VolumeLayout | undefined> {
  if ((await isDir(join(root, 'imagesTr'))) || ((await isFile(join(root, 'dataset.json'))) && (await isDir(join(root, 'labelsTr'))))) return 'nnunet';
  const images = await entries(join(root, 'images'));
  if (!images) return undefined;
  if (images.files.some((f) => NIFTI.test(f))) return 'volumes';
  // DICOM series folders: images/<case>/ next to labels/<case>.nii.gz
  if (images.dirs.length > 0 && !(await isDir(join(root, 'masks'))) && (await isDir(join(root, 'labels')))) return 'volumes';
  return undefined;
}

export interface DatasetJson {
  labels?: Map<number, string>;
  channels?: string[];
  fileEnding: string;
}

/** Reads nnU-Net's dataset.json; a malformed file is one UserError naming it. */
export async function readDatasetJson(path: string): Promise<DatasetJson> {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${path}: ${code ? `cannot read (${code})` : `not valid JSON (${(e as Error).message})`}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UserError(`${path}: expected a JSON object`);
  const out: DatasetJson = { fileEnding: typeof json.file_ending === 'string' ? json.file_ending : '.nii.gz' };
  if (json.labels !== undefined) {
    if (typeof json.labels !== 'object' || json.labels === null) throw new UserError(`${path}: "labels" must map names to integer values`);
    const labels = new Map<number, string>();
    for (const [name, value] of Object.entries(json.labels as Record<string, unknown>)) {
      // nnU-Net v1 spelled it value -> name; region-based labels (arrays) name several values
      const values = Array.isArray(value) ? value : /^\d+$/.test(name) && typeof value === 'string' ? [Number(name)] : [value];
      const label = /^\d+$/.test(name) && typeof value === 'string' ? value : name;
      for (const v of values) {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new UserError(`${path}: label "${name}" has value ${JSON.stringify(v)}, expected an integer >= 0`);
        if (!labels.has(v)) labels.set(v, label);
      }
    }
    out.labels = labels;
  }
  if (json.channel_names && typeof json.channel_names === 'object') {
    const names = json.channel_names as Record<string, unknown>;
    out.channels = Object.keys(names)
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => String(names[k]));
  }
  return out;
}

/** Scans a volume dataset; a folder in neither layout is a UserError, pairing problems are collected. */
export async function scanVolumeDataset(root: string): Promise<VolumeDataset> {
  const layout = await detectVolumeLayout(root);
  if (!layout) throw new UserError(`${root}: not a volume dataset (expected imagesTr/ + labelsTr/ + dataset.json, or images/<case>.nii.gz + labels/<case>.nii.gz)`);
  return layout === 'nnunet' ? scanNnunet(root) : scanOurs(root);
}

async function scanNnunet(root: string): Promise<VolumeDataset> {
  const problems: string[] = [];
  const jsonPath = join(root, 'dataset.json');
  const meta: DatasetJson = (await isFile(jsonPath)) ? await readDatasetJson(jsonPath) : { fileEnding: '.nii.gz' };
  const ending = meta.fileEnding;
  const group = async (dir: string): Promise<Map<string, Map<number, string>>> => {
    const byCase = new Map<string, Map<number, string>>();
    const list = await entries(dir);
    for (const f of list?.files ?? []) {
      if (!f.endsWith(ending)) continue;
      const m = /^(.+)_(\d{4})$/.exec(f.slice(0, f.length - ending.length));
      if (!m) {
        problems.push(`${join(dir, f)}: not named <case>_<channel>${ending} (for example case_001_0000${ending})`);
        continue;
      }
      const channels = byCase.get(m[1]!) ?? new Map<number, string>();
      channels.set(Number(m[2]), join(dir, f));
      byCase.set(m[1]!, channels);
    }
    return byCase;
  };
  const channelCount = (found: Map<string, Map<number, string>>) => meta.channels?.length ?? Math.max(1, ...[...found.values()].map((c) => Math.max(...c.keys()) + 1));
  const toCases = (found: Map<string, Map<number, string>>, dir: string, n: number): VolumeCase[] => {
    const out: VolumeCase[] = [];
    for (const [id, channels] of [...found].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const missing = Array.from({ length: n }, (_, c) => c).filter((c) => !channels.has(c));
      if (missing.length > 0) problems.push(`${join(dir, `${id}_${String(missing[0]).padStart(4, '0')}${ending}`)}: channel ${missing[0]} of case "${id}" not found`);
      else out.push({ id, images: Array.from({ length: n }, (_, c) => channels.get(c)!) });
    }
    return out;
  };
  const trDir = join(root, 'imagesTr');
  const train = await group(trDir);
  const n = channelCount(train);
  const labelsDir = join(root, 'labelsTr');
  const labelFiles = new Map((await entries(labelsDir))?.files.filter((f) => f.endsWith(ending)).map((f) => [f.slice(0, f.length - ending.length), join(labelsDir, f)] as const) ?? []);
  const cases: VolumeCase[] = [];
  for (const c of toCases(train, trDir, n)) {
    const label = labelFiles.get(c.id);
    if (label) cases.push({ ...c, label });
    else problems.push(`${c.images[0]}: image without label (expected ${join(labelsDir, c.id + ending)})`);
  }
  for (const [id, path] of labelFiles) if (!train.has(id)) problems.push(`${path}: label without image (expected ${join(trDir, `${id}_0000${ending}`)})`);
  const testCases = toCases(await group(join(root, 'imagesTs')), join(root, 'imagesTs'), n);
  return { root, layout: 'nnunet', cases, testCases, labels: meta.labels, channels: meta.channels ?? Array.from({ length: n }, (_, c) => String(c)), problems };
}

async function scanOurs(root: string): Promise<VolumeDataset> {
  const problems: string[] = [];
  const imagesDir = join(root, 'images');
  const labelsDir = join(root, 'labels');
  const images = (await entries(imagesDir))!;
  const byId = new Map<string, string>();
  const add = (id: string, path: string) => {
    if (byId.has(id)) problems.push(`${path}: duplicate case "${id}" (also ${byId.get(id)})`);
    else byId.set(id, path);
  };
  for (const f of images.files) if (NIFTI.test(f)) add(stripNifti(f), join(imagesDir, f));
  for (const d of images.dirs) add(d, join(imagesDir, d));
  const labelList = await entries(labelsDir);
  if (!labelList) problems.push(`${labelsDir}: labels folder not found (expected labels/<case>.nii.gz)`);
  const labels = new Map<string, string>();
  for (const f of labelList?.files ?? []) if (NIFTI.test(f)) labels.set(stripNifti(f), join(labelsDir, f));
  const cases: VolumeCase[] = [];
  for (const [id, path] of [...byId].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const label = labels.get(id);
    if (label) cases.push({ id, images: [path], label });
    else if (labelList) problems.push(`${path}: image without label (expected ${join(labelsDir, `${id}.nii.gz`)})`);
  }
  for (const [id, path] of labels) if (!byId.has(id)) problems.push(`${path}: label without image`);
  const jsonPath = join(root, 'dataset.json');
  const meta = (await isFile(jsonPath)) ? await readDatasetJson(jsonPath) : undefined;
  return { root, layout: 'volumes', cases, testCases: [], labels: meta?.labels, channels: meta?.channels ?? ['0'], problems };
}
