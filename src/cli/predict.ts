import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import { IMAGE_EXTENSIONS } from '../data/dataset.ts';
import { volumeMetaFrom, type VolumeModelMeta } from '../data/volume/model-meta.ts';
import { removePartialOutputs } from '../data/volume/nifti-write.ts';
import { UserError } from '../errors.ts';
import { readSafetensorsFile } from '../io/safetensors.ts';
import type { SegmentationModel } from '../models/model.ts';
import { Segmenter } from '../pipeline/segmenter.ts';
import { checkVolumeModel } from '../pipeline/volume.ts';
import type { Device } from '../runtime/device.ts';
import { addDeviceOption, deviceFromFlags, type DeviceFlags } from './device-option.ts';
import { addModelOptions, modelFromFlags, requireImageChannels, type ModelFlags } from './model-options.ts';
import { chooseInputs, findInputs, imageOutputs, predictVolumeCase, refuseSameNames, type VolumeInput } from './predict-core.ts';
import { ProgressLine } from './progress.ts';
import { action, ensureOutputDir, intOption, writeOutput } from './run.ts';
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
        const chosen = chooseInputs(flags.input, flags.weights, inputs, meta);
        if (chosen.kind === 'volume') return predictVolumes(flags, device, chosen.meta, chosen.volumes);
        return predictImages(flags, device, chosen.images);
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
  const release = onInterrupt();
  try {
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
      for (const { file, bytes } of await imageOutputs(r, name, flags)) await writeOutput(join(flags.out, file), bytes);
      progress.update(i + 1);
    }
  } finally {
    release();
  }
  progress.done();
  await segmenter.release();
  console.log(`wrote ${files.length - failed} masks to ${flags.out}${failed ? ` (${failed} files skipped)` : ''}`);
  if (failed) process.exitCode = 1;
}

/** Ctrl-C / kill during a prediction: remove the temp files being written, say so, exit 130 / 143. */
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
      let progress: ProgressLine | undefined;
      try {
        const r = await predictVolumeCase(segmenter, model, meta, v, {
          out: flags.out,
          batch: flags.batch,
          prob: flags.prob,
          volumeIndex: flags.volumeIndex,
          onProgress: (done, total) => {
            progress ??= new ProgressLine(v.name, total, 'slices');
            progress.update(done);
          },
        });
        progress?.done();
        console.log(`${v.name}: ${r.slices} ${meta.axis} slices in ${r.seconds.toFixed(1)} s (${(r.slices / r.seconds).toFixed(1)} slices/s) -> ${r.labelPath}`);
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
