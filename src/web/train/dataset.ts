// A dataset from files the user picked or dropped (relative paths, no file system): our layout (images/<id>.<ext> +
// masks/<k>/<id>.<ext>, as `mobileutr train` reads it) or nnU-Net's 2-D layout (imagesTr/<case>_0000.<ext> +
// labelsTr/<case>.<ext> + dataset.json). Pure: the paths decide everything, files are only carried along.

export const BROWSER_IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.webp'];

/** A picked file: its path inside the chosen folder ('images/a.png') and its contents. */
export interface DatasetFile<F = Blob> {
  path: string;
  file: F;
}

/** One training pair: the image and, per mask class, the file and the label value that is foreground. */
export interface PairFiles<F = Blob> {
  id: string;
  image: DatasetFile<F>;
  /** Our layout: one binary mask per class (foreground > 127, or 1 in a 0/1 map). nnU-Net: one label map, `value` per class. */
  masks: { file: DatasetFile<F>; value: number | null }[];
}

export interface BrowserDataset<F = Blob> {
  layout: 'mobileutr' | 'nnunet';
  /** The folder's own name (the common first path segment), for messages. */
  root: string;
  /** Mask classes (mask folders, or nnU-Net labels without background). */
  classes: number;
  classNames: string[];
  pairs: Map<string, PairFiles<F>>;
  /** Sorted ids of complete pairs. */
  ids: string[];
  /** One line per pairing problem (image without mask, mask without image, duplicate id), naming the file. */
  problems: string[];
}

export class DatasetLayoutError extends Error {}

const extOf = (name: string) => {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? '' : name.slice(dot).toLowerCase();
};
const stem = (name: string) => name.slice(0, name.length - extOf(name).length);

/** Strips the chosen folder's own name when every path starts with it ('busi-mini/images/a.png' -> 'images/a.png'). */
function relativeTo(files: readonly DatasetFile<unknown>[]): { root: string; rel: (p: string) => string } {
  const first = files[0]?.path.split('/')[0] ?? '';
  const shared = first !== '' && files.every((f) => f.path.startsWith(`${first}/`)) && !['images', 'masks', 'imagesTr', 'labelsTr'].includes(first);
  return { root: shared ? first : '', rel: (p) => (shared ? p.slice(first.length + 1) : p) };
}

/**
 * Indexes picked files as a training dataset. `datasetJson` is the text of nnU-Net's dataset.json when the folder has
 * one (its labels name the classes). Throws DatasetLayoutError when the files are neither layout.
 */
export function indexDataset<F>(files: readonly DatasetFile<F>[], datasetJson?: string): BrowserDataset<F> {
  if (files.length === 0) throw new DatasetLayoutError('no files: choose a folder with images/ and masks/0/ (or nnU-Net imagesTr/ and labelsTr/)');
  const { root, rel } = relativeTo(files);
  const entries = files.map((f) => ({ ...f, rel: rel(f.path) })).filter((f) => BROWSER_IMAGE_EXTENSIONS.includes(extOf(f.rel)) || f.rel === 'dataset.json');
  const under = (dir: string) => entries.filter((f) => f.rel.startsWith(`${dir}/`) && BROWSER_IMAGE_EXTENSIONS.includes(extOf(f.rel)));
  if (under('images').length > 0) return ourLayout(root, under, (f) => f.rel);
  if (under('imagesTr').length > 0) return nnunetLayout(root, under, datasetJson);
  throw new DatasetLayoutError(
    `${root || 'the folder'}: no images/ (with masks/0/) and no nnU-Net imagesTr/ (with labelsTr/); supported images: ${BROWSER_IMAGE_EXTENSIONS.join(' ')}`,
  );
}

type Entry<F> = DatasetFile<F> & { rel: string };

function ourLayout<F>(root: string, under: (dir: string) => Entry<F>[], relOf: (f: Entry<F>) => string): BrowserDataset<F> {
  const problems: string[] = [];
  const images = new Map<string, Entry<F>>();
  for (const f of under('images').sort((a, b) => relOf(a).localeCompare(relOf(b)))) {
    const name = relOf(f).slice('images/'.length);
    if (name.includes('/')) continue;
    const id = stem(name);
    if (images.has(id)) problems.push(`${f.path}: duplicate id "${id}" (also ${images.get(id)!.path})`);
    else images.set(id, f);
  }
  const classFolders = [...new Set(under('masks').map((f) => relOf(f).split('/')[1]!))].filter((d) => /^\d+$/.test(d));
  const classes = classFolders.length;
  if (classes === 0) throw new DatasetLayoutError(`${root || 'the folder'}: images/ but no masks/0/ (one folder of masks per class: masks/0/<id>.png)`);
  for (let k = 0; k < classes; k++)
    if (!classFolders.includes(String(k))) throw new DatasetLayoutError(`${root || 'the folder'}: mask class folders must be 0..${classes - 1}, missing masks/${k}/`);
  const masks: Map<string, Entry<F>>[] = [];
  for (let k = 0; k < classes; k++) {
    const byId = new Map<string, Entry<F>>();
    for (const f of under(`masks/${k}`).sort((a, b) => relOf(a).localeCompare(relOf(b)))) {
      const id = stem(relOf(f).slice(`masks/${k}/`.length));
      if (byId.has(id)) problems.push(`${f.path}: duplicate mask for id "${id}" (also ${byId.get(id)!.path})`);
      else byId.set(id, f);
    }
    for (const [id, f] of byId) if (!images.has(id)) problems.push(`${f.path}: mask without image`);
    masks.push(byId);
  }
  const pairs = new Map<string, PairFiles<F>>();
  for (const [id, image] of images) {
    const missing = masks.findIndex((m) => !m.has(id));
    if (missing >= 0) problems.push(`${image.path}: image without mask (expected masks/${missing}/${id}.png)`);
    else pairs.set(id, { id, image, masks: masks.map((m) => ({ file: m.get(id)!, value: null })) });
  }
  return { layout: 'mobileutr', root, classes, classNames: Array.from({ length: classes }, (_, k) => `class ${k}`), pairs, ids: [...pairs.keys()].sort(), problems };
}

function nnunetLayout<F>(root: string, under: (dir: string) => Entry<F>[], datasetJson?: string): BrowserDataset<F> {
  const problems: string[] = [];
  let labels: [string, number][] = [];
  if (datasetJson !== undefined) {
    try {
      const parsed = JSON.parse(datasetJson) as { labels?: Record<string, number | number[]> };
      labels = Object.entries(parsed.labels ?? {})
        .filter(([, v]) => typeof v === 'number' && v > 0)
        .map(([name, v]) => [name, v as number] as [string, number])
        .sort((a, b) => a[1] - b[1]);
    } catch {
      throw new DatasetLayoutError(`${root || 'the folder'}/dataset.json: not valid JSON`);
    }
  }
  if (labels.length === 0) labels = [['foreground', 1]];
  const images = new Map<string, Entry<F>>();
  for (const f of under('imagesTr')) {
    const name = f.rel.slice('imagesTr/'.length);
    const m = /^(.*)_0000$/.exec(stem(name));
    if (!m) {
      if (/_\d{4}$/.test(stem(name))) problems.push(`${f.path}: extra channel file (only _0000 is read)`);
      else problems.push(`${f.path}: not named <case>_0000.<ext> (nnU-Net)`);
      continue;
    }
    images.set(m[1]!, f);
  }
  const labelFiles = new Map(under('labelsTr').map((f) => [stem(f.rel.slice('labelsTr/'.length)), f]));
  for (const [id, f] of labelFiles) if (!images.has(id)) problems.push(`${f.path}: label map without image`);
  const pairs = new Map<string, PairFiles<F>>();
  for (const [id, image] of images) {
    const label = labelFiles.get(id);
    if (!label) problems.push(`${image.path}: image without label map (expected labelsTr/${id}.png)`);
    else pairs.set(id, { id, image, masks: labels.map(([, value]) => ({ file: label, value })) });
  }
  return { layout: 'nnunet', root, classes: labels.length, classNames: labels.map(([n]) => n), pairs, ids: [...pairs.keys()].sort(), problems };
}
