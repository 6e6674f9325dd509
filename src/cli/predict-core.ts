// What `predict` does per input, shared with the queue worker (src/cli/worker.ts) so that both write the same
// files byte for byte: finding the inputs of a path, the output files of one segmented image, one volume case.
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { IMAGE_EXTENSIONS } from '../data/dataset.ts';
import { encodePng } from '../data/image.ts';
import { isNiftiPath, readVolume } from '../data/volume/index.ts';
import type { VolumeModelMeta } from '../data/volume/model-meta.ts';
import { writeLabelNifti, writeProbabilityNifti } from '../data/volume/nifti-write.ts';
import { UserError } from '../errors.ts';
import { drawOverlay } from '../eval/overlay.ts';
import type { SegmentationModel } from '../models/model.ts';
import type { Segmentation, Segmenter } from '../pipeline/segmenter.ts';
import { segmentVolume } from '../pipeline/volume.ts';
import { fsProblem } from './run.ts';

/** One volume to segment: its output name and its files (one NIfTI or DICOM folder; nnU-Net channels _0000, _0001, ...). */
export interface VolumeInput {
  name: string;
  paths: string[];
}

/** What --input holds: 2-D images, volumes, or both (a folder may mix them). */
export interface Inputs {
  images: string[];
  volumes: VolumeInput[];
}

export const isImagePath = (f: string) => IMAGE_EXTENSIONS.includes(extname(f).toLowerCase());
export const niftiName = (f: string) => basename(f).replace(/\.nii(\.gz)?$/i, '');
/** DICOM file names: *.dcm, *.ima, *.dicom, no extension, or UID-like names ending in digits. */
const isDicomName = (f: string) => /^(\.dcm|\.ima|\.dicom|\.\d+|)$/i.test(extname(f));
/** nnU-Net's channel suffix: `<case>_0000.nii.gz`. */
const CHANNEL = /^(.*)_(\d{4})$/;

/**
 * A file is an image or a volume by its name; a folder is one DICOM series when it holds DICOM-named files and
 * nothing else we recognise (no images, no NIfTI, no subfolders), else a folder of inputs: images, NIfTI files and
 * DICOM series subfolders. NIfTI files all named `<case>_XXXX` are nnU-Net channels of one case each.
 */
export async function findInputs(input: string): Promise<Inputs> {
  const info = await stat(input).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`${input}: ${e.code === 'ENOENT' ? 'not found' : `cannot read (${e.code ?? e.message})`}`);
  });
  if (!info.isDirectory()) return isNiftiPath(input) ? { images: [], volumes: [{ name: niftiName(input), paths: [input] }] } : { images: [input], volumes: [] };
  const entries = await readdir(input, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`${input}: cannot list the folder (${e.code ?? e.message})`);
  });
  const visible = entries.filter((e) => !e.name.startsWith('.')).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const folders: string[] = [];
  const files: string[] = [];
  for (const e of visible) {
    const isDir = e.isDirectory() || (e.isSymbolicLink() && (await stat(join(input, e.name)).catch(() => undefined))?.isDirectory());
    (isDir ? folders : files).push(e.name);
  }
  const images = files.filter(isImagePath);
  const niftis = files.filter(isNiftiPath);
  if (images.length === 0 && niftis.length === 0 && folders.length === 0 && files.some(isDicomName)) return { images: [], volumes: [{ name: basename(input.replace(/\/+$/, '')) || input, paths: [input] }] };
  const volumes: VolumeInput[] = [];
  if (niftis.length > 0 && niftis.every((f) => CHANNEL.test(niftiName(f)))) {
    const cases = new Map<string, string[]>();
    for (const f of niftis) {
      const name = CHANNEL.exec(niftiName(f))![1]!;
      cases.set(name, [...(cases.get(name) ?? []), join(input, f)]);
    }
    for (const [name, paths] of cases) volumes.push({ name, paths: paths.sort() });
  } else for (const f of niftis) volumes.push({ name: niftiName(f), paths: [join(input, f)] });
  for (const f of folders) volumes.push({ name: f, paths: [join(input, f)] });
  return { images: images.map((f) => join(input, f)), volumes };
}

/** Two inputs that would write the same output file are refused rather than one overwriting the other. */
export function refuseSameNames(input: string, names: [string, string][], extension: string): void {
  const seen = new Map<string, string>();
  for (const [name, file] of names) {
    if (seen.has(name)) throw new UserError(`${join(input, file)}: same name as ${seen.get(name)}; both would write ${name}${extension}`);
    seen.set(name, file);
  }
}

/**
 * What a model predicts of `inputs`: a volume model (its weights carry volume metadata) the volumes, a 2-D model
 * the images; the other kind is left out with a warning, and nothing of the right kind is a UserError.
 */
export function chooseInputs(
  input: string,
  weights: string | undefined,
  inputs: Inputs,
  meta: VolumeModelMeta | undefined,
): { kind: 'image'; images: string[] } | { kind: 'volume'; volumes: VolumeInput[]; meta: VolumeModelMeta } {
  if (meta) {
    if (inputs.volumes.length === 0)
      throw new UserError(
        `${weights}: a volume model (trained on CT/MRI slices), but ${input} holds ${inputs.images.length ? '2-D images' : 'no volumes'}; give a .nii/.nii.gz file, a DICOM series folder or a folder of them`,
      );
    if (inputs.images.length > 0)
      console.warn(`warning: ${input}: ${inputs.images.length} 2-D image${inputs.images.length > 1 ? 's' : ''} left out: a volume model predicts the volumes only`);
    return { kind: 'volume', volumes: inputs.volumes, meta };
  }
  if (inputs.images.length === 0 && inputs.volumes.length > 0)
    throw new UserError(
      weights
        ? `${weights}: a 2-D model (its metadata has no "volume" entry), but ${input} is a volume; predict volumes with weights trained on volumes`
        : `${input}: a volume needs --weights of a model trained on volumes (their metadata gives the intensity preset and the classes)`,
    );
  if (inputs.images.length > 0 && inputs.volumes.length > 0)
    console.warn(`warning: ${input}: ${inputs.volumes.length} volume${inputs.volumes.length > 1 ? 's' : ''} (NIfTI or DICOM folders) left out: a 2-D model predicts the images only`);
  return { kind: 'image', images: inputs.images };
}

/** Which extra files to write next to each mask. */
export interface OutputOptions {
  /** <name>_prob.png (images) or <case>_prob.nii.gz (volumes). */
  prob?: boolean;
  /** <name>_overlay.png (images only). */
  overlay?: boolean;
}

/** The files `predict` writes for one segmented image, in writing order: `<name>.png`, then `_prob.png`, `_overlay.png` when asked. */
export async function imageOutputs(r: Segmentation, name: string, o: OutputOptions): Promise<{ file: string; bytes: Uint8Array }[]> {
  const files = [{ file: `${name}.png`, bytes: await encodePng(r.mask, r.width, r.height, 1) }];
  if (o.prob) files.push({ file: `${name}_prob.png`, bytes: await encodePng(r.probability, r.width, r.height, 1) });
  if (o.overlay) files.push({ file: `${name}_overlay.png`, bytes: await encodePng(drawOverlay(r.image, r.mask), r.width, r.height, 3) });
  return files;
}

/** The files `predict` writes for one volume case: `<case>_prob.nii.gz` (with prob) first, then the label map `<case>.nii.gz`. */
export function volumeOutputs(name: string, o: OutputOptions): string[] {
  return [...(o.prob ? [`${name}_prob.nii.gz`] : []), `${name}.nii.gz`];
}

/** Writes a volume output whole or not at all (temp file + rename); a failure is a one-line UserError naming it. */
async function writeVolumeOutput(path: string, write: (path: string) => Promise<void>): Promise<void> {
  try {
    await write(path);
  } catch (e) {
    // only file-system failures (disk full, permissions) are the user's to fix; anything else is a bug to report
    if (e instanceof UserError || typeof (e as NodeJS.ErrnoException).code !== 'string') throw e;
    throw new UserError(`${path}: cannot write (${fsProblem(e)})`);
  }
}

export interface VolumeCaseOptions extends OutputOptions {
  out: string;
  /** Slices per network run. */
  batch: number;
  /** The volume of 4-D files to segment. */
  volumeIndex?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Reads one volume case (all its channels), segments it and writes its outputs (see {@link volumeOutputs}) into `o.out`. */
export async function predictVolumeCase(
  segmenter: Segmenter,
  model: SegmentationModel,
  meta: VolumeModelMeta,
  v: VolumeInput,
  o: VolumeCaseOptions,
): Promise<{ labelPath: string; slices: number; seconds: number }> {
  const read = [];
  for (const path of v.paths) read.push(await readVolume(path, { volumeIndex: o.volumeIndex }));
  const r = await segmentVolume(segmenter, model.options, read, meta, { batch: o.batch, probabilities: o.prob, onProgress: o.onProgress });
  const grid = read[0]!.grid;
  const files = volumeOutputs(v.name, o);
  // probabilities first: a <case>.nii.gz on disk means the case is complete
  if (r.probabilities) await writeVolumeOutput(join(o.out, files[0]!), (p) => writeProbabilityNifti(p, r.probabilities!, model.options.classes, grid));
  const labelPath = join(o.out, files.at(-1)!);
  await writeVolumeOutput(labelPath, (p) => writeLabelNifti(p, r.labels, grid));
  return { labelPath, slices: r.slices, seconds: r.timing.totalMs / 1000 };
}
