import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import { IMAGE_EXTENSIONS } from '../data/dataset.ts';
import { encodePng } from '../data/image.ts';
import { isNiftiPath, readVolume } from '../data/volume/index.ts';
import { volumeMetaFrom, type VolumeModelMeta } from '../data/volume/model-meta.ts';
import { removePartialOutputs, writeLabelNifti, writeProbabilityNifti } from '../data/volume/nifti-write.ts';
import { UserError } from '../errors.ts';
import { drawOverlay } from '../eval/overlay.ts';
import { readSafetensorsFile } from '../io/safetensors.ts';
import type { SegmentationModel } from '../models/model.ts';
import { Segmenter } from '../pipeline/segmenter.ts';
import { checkVolumeModel, segmentVolume } from '../pipeline/volume.ts';
import type { Device } from '../runtime/device.ts';
import { addDeviceOption, deviceFromFlags, type DeviceFlags } from './device-option.ts';
import { addModelOptions, modelFromFlags, requireImageChannels, type ModelFlags } from './model-options.ts';
import { ProgressLine } from './progress.ts';
import { action, ensureOutputDir, fsProblem, intOption, writeOutput } from './run.ts';
import { COMMAND_DESCRIPTIONS } from './descriptions.ts';

interface PredictFlags extends ModelFlags, DeviceFlags {
  input: string;
  out: string;
  overlay?: boolean;
  prob?: boolean;
  threads: number;
  batch: number;
  volumeIndex?: number;
}

/** One volume to segment: its output name and its files (one NIfTI or DICOM folder; nnU-Net channels _0000, _0001, ...). */
interface VolumeInput {
  name: string;
  paths: string[];
}

/** What --input holds: 2-D images, volumes, or both (a folder may mix them). */
interface Inputs {
  images: string[];
  volumes: VolumeInput[];
}

const isImagePath = (f: string) => IMAGE_EXTENSIONS.includes(extname(f).toLowerCase());
const niftiName = (f: string) => basename(f).replace(/\.nii(\.gz)?$/i, '');
/** DICOM file names: *.dcm, *.ima, *.dicom, no extension, or UID-like names ending in digits. */
const isDicomName = (f: string) => /^(\.dcm|\.ima|\.dicom|\.\d+|)$/i.test(extname(f));
/** nnU-Net's channel suffix: `<case>_0000.nii.gz`. */
const CHANNEL = /^(.*)_(\d{4})$/;

/**
 * A file is an image or a volume by its name; a folder is one DICOM series when it holds DICOM-named files and
 * nothing else we recognise (no images, no NIfTI, no subfolders), else a folder of inputs: images, NIfTI files and
 * DICOM series subfolders. NIfTI files all named `<case>_XXXX` are nnU-Net channels of one case each.
 */
async function findInputs(input: string): Promise<Inputs> {
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
function refuseSameNames(input: string, names: [string, string][], extension: string): void {
  const seen = new Map<string, string>();
  for (const [name, file] of names) {
    if (seen.has(name)) throw new UserError(`${join(input, file)}: same name as ${seen.get(name)}; both would write ${name}${extension}`);
    seen.set(name, file);
  }
}

export function registerPredict(program: Command): void {
  addDeviceOption(addModelOptions(
    program
      .command('predict')
      .description(COMMAND_DESCRIPTIONS.predict),
    { weights: true },
  ))
    .requiredOption('-i, --input <path>', 'an image, a .nii/.nii.gz volume, a DICOM series folder, or a folder of them')
    .requiredOption('-o, --out <dir>', 'output folder')
    .option('--overlay', 'also write <name>_overlay.png (mask over the image; 2-D images only)')
    .option('--prob', 'also write <name>_prob.png (foreground probability, 0-255); volumes: <case>_prob.nii.gz, float32, 4-D with one volume per class')
    .option('--threads <n>', 'ONNX Runtime threads', intOption(1), 2)
    .option('--batch <n>', 'volumes: slices per network run', intOption(1), 4)
    .option('--volume-index <n>', 'volumes: the volume of 4-D files to segment', intOption(0))
    .action(
      action(async (flags: PredictFlags) => {
        // first: a device that cannot run stops the command before any input is read
        const device = await deviceFromFlags(flags);
        const inputs = await findInputs(flags.input);
        const meta = flags.weights ? volumeMetaFrom((await readSafetensorsFile(flags.weights)).metadata, flags.weights) : undefined;
        if (meta) {
          if (inputs.volumes.length === 0)
            throw new UserError(
              `${flags.weights}: a volume model (trained on CT/MRI slices), but ${flags.input} holds ${inputs.images.length ? '2-D images' : 'no volumes'}; give a .nii/.nii.gz file, a DICOM series folder or a folder of them`,
            );
          if (inputs.images.length > 0)
            console.warn(`warning: ${flags.input}: ${inputs.images.length} 2-D image${inputs.images.length > 1 ? 's' : ''} left out: a volume model predicts the volumes only`);
          return predictVolumes(flags, device, meta, inputs.volumes);
        }
        if (inputs.images.length === 0 && inputs.volumes.length > 0)
          throw new UserError(
            flags.weights
              ? `${flags.weights}: a 2-D model (its metadata has no "volume" entry), but ${flags.input} is a volume; predict volumes with weights trained on volumes`
              : `${flags.input}: a volume needs --weights of a model trained on volumes (their metadata gives the intensity preset and the classes)`,
          );
        if (inputs.images.length > 0 && inputs.volumes.length > 0)
          console.warn(`warning: ${flags.input}: ${inputs.volumes.length} volume${inputs.volumes.length > 1 ? 's' : ''} (NIfTI or DICOM folders) left out: a 2-D model predicts the images only`);
        return predictImages(flags, device, inputs.images);
      }),
    );
}

async function predictImages(flags: PredictFlags, device: Device, files: string[]): Promise<void> {
  if (files.length === 0) throw new UserError(`${flags.input}: no images (${IMAGE_EXTENSIONS.join(' ')})`);
  // a.png and a.jpg would both write a.png: refuse rather than overwrite one with the other
  refuseSameNames(flags.input, files.map((f) => [basename(f, extname(f)), basename(f)]), '.png');
  if (!flags.weights) console.warn('warning: no --weights given: predicting with default-initialised (untrained) weights');
  const model = await modelFromFlags(flags);
  requireImageChannels(model, flags.weights);
  await ensureOutputDir(flags.out);
  const segmenter = await Segmenter.create(model, { threads: flags.threads, device });
  const progress = new ProgressLine('predict', files.length);
  let failed = 0;
  for (const [i, file] of files.entries()) {
    const name = basename(file, extname(file));
    let r: Awaited<ReturnType<Segmenter['segment']>>;
    try {
      r = await segmenter.segment(file);
    } catch (e) {
      // one bad image in a folder should not stop the rest: report it and go on
      if (!(e instanceof UserError) || files.length === 1) throw e;
      console.error(`${process.stderr.isTTY ? '\n' : ''}skipped: ${e.message}`); // below the progress bar
      failed++;
      progress.update(i + 1);
      continue;
    }
    // a failed write (disk full, permissions) would fail for the next image too: stop with its message
    await writeOutput(join(flags.out, `${name}.png`), await encodePng(r.mask, r.width, r.height, 1));
    if (flags.prob) await writeOutput(join(flags.out, `${name}_prob.png`), await encodePng(r.probability, r.width, r.height, 1));
    if (flags.overlay) await writeOutput(join(flags.out, `${name}_overlay.png`), await encodePng(drawOverlay(r.image, r.mask), r.width, r.height, 3));
    progress.update(i + 1);
  }
  progress.done();
  await segmenter.release();
  console.log(`wrote ${files.length - failed} masks to ${flags.out}${failed ? ` (${failed} files skipped)` : ''}`);
  if (failed) process.exitCode = 1;
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

/** Ctrl-C / kill during a volume prediction: remove the temp file being written, say so, exit 130 / 143. */
function onInterrupt(): () => void {
  const handler = (signal: NodeJS.Signals) => {
    removePartialOutputs();
    console.error(`\nmobileutr: interrupted (${signal}); files already written are complete, nothing half-written is left`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

async function predictVolumes(flags: PredictFlags, device: Device, meta: VolumeModelMeta, volumes: VolumeInput[]): Promise<void> {
  if (flags.overlay) console.warn('warning: --overlay applies to 2-D images; volumes get label maps only');
  refuseSameNames(flags.input, volumes.map((v) => [v.name, basename(v.paths[0]!)]), '.nii.gz');
  const model: SegmentationModel = await modelFromFlags(flags);
  checkVolumeModel(model.options, meta, flags.weights!, volumes[0]!.paths.length);
  await ensureOutputDir(flags.out);
  const segmenter = await Segmenter.create(model, { threads: flags.threads, device });
  const release = onInterrupt();
  let failed = 0;
  try {
    for (const v of volumes) {
      const labelPath = join(flags.out, `${v.name}.nii.gz`);
      let progress: ProgressLine | undefined;
      try {
        const read = [];
        for (const path of v.paths) read.push(await readVolume(path, { volumeIndex: flags.volumeIndex }));
        const r = await segmentVolume(segmenter, model.options, read, meta, {
          batch: flags.batch,
          probabilities: flags.prob,
          onProgress: (done, total) => {
            progress ??= new ProgressLine(v.name, total, 'slices');
            progress.update(done);
          },
        });
        progress?.done();
        const grid = read[0]!.grid;
        // probabilities first: a <case>.nii.gz on disk means the case is complete
        if (r.probabilities) await writeVolumeOutput(join(flags.out, `${v.name}_prob.nii.gz`), (p) => writeProbabilityNifti(p, r.probabilities!, model.options.classes, grid));
        await writeVolumeOutput(labelPath, (p) => writeLabelNifti(p, r.labels, grid));
        const seconds = r.timing.totalMs / 1000;
        console.log(`${v.name}: ${r.slices} ${meta.axis} slices in ${seconds.toFixed(1)} s (${(r.slices / seconds).toFixed(1)} slices/s) -> ${labelPath}`);
      } catch (e) {
        progress?.done();
        // a bad volume in a folder should not stop the rest; a failed write would fail for the next one too
        if (!(e instanceof UserError) || volumes.length === 1 || /: cannot write \(/.test(e.message)) throw e;
        console.error(`skipped: ${e.message}`);
        failed++;
      }
    }
  } finally {
    release();
    await segmenter.release();
  }
  const written = volumes.length - failed;
  console.log(`wrote ${written} label volume${written === 1 ? '' : 's'} to ${flags.out}${failed ? ` (${failed} skipped)` : ''}`);
  if (failed) process.exitCode = 1;
}
