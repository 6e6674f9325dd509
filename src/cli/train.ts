import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Option, type Command } from 'commander';
import { UserError } from '../errors.ts';
import { readSafetensorsFile } from '../io/safetensors.ts';
import { PRETRAINED, weightsPath } from '../models/pretrained.ts';
import { MODELS } from '../models/registry.ts';
import { scanDataset } from '../data/dataset.ts';
import { detectVolumeLayout, scanVolumeDataset, type VolumeDataset } from '../data/volume/dataset.ts';
import { readVolume } from '../data/volume/index.ts';
import { parseIntensity, parseWindow, type Intensity } from '../data/volume/intensity.ts';
import { classTable } from '../data/volume/model-meta.ts';
import { SLICE_AXES, type SliceAxis } from '../data/volume/slices.ts';
import { checkConfig, PAPER_DEFAULTS, type TrainConfig } from '../train/config.ts';
import { runTraining } from '../train/loop.ts';
import { autoLglKernel } from '../train/lgl-auto.ts';
import { describeMeasurement, LGL_KERNEL_DEFAULT, lglKernelOfTensors } from '../models/mobileutr/lgl-kernel.ts';
import { LGL_KERNEL_HELP, lglKernelOrAutoOption } from './lgl-kernel-option.ts';
import type { Dataset } from '../data/dataset.ts';
import { addDeviceOption, deviceFromFlags, type DeviceFlags } from './device-option.ts';
import { formatDuration, ProgressLine } from './progress.ts';
import { action, fractionOption, intOption, positiveOption, reportPairing } from './run.ts';
import { COMMAND_DESCRIPTIONS, TRAINING_ENVIRONMENT_HELP } from './descriptions.ts';

/** The sample that ships with the repo (a few BUSI images) and the short schedule of the demo run. */
export const SAMPLE_DATA = fileURLToPath(new URL('../../samples/busi-mini', import.meta.url));
const DEMO = { epochs: 30, size: 128, batch: 8 };
/** The bundled CT (two interleaved halves of one real scan, 8 organs; see samples/ct-mini/README.md) and its short schedule. */
export const CT_SAMPLE_DATA = fileURLToPath(new URL('../../samples/ct-mini', import.meta.url));
const CT_DEMO = { epochs: 40, size: 128, batch: 8 };

interface TrainFlags extends DeviceFlags {
  data?: string;
  split?: string;
  valSplit?: string;
  val: number;
  model: string;
  epochs?: number;
  batch?: number;
  dropLast?: boolean;
  augmentAfterResize?: boolean;
  size?: number;
  inChannels: number;
  lr: number;
  optimizer: 'sgd' | 'adamw';
  momentum: number;
  weightDecay: number;
  schedule: 'poly' | 'cosine' | 'constant';
  warmupEpochs: number;
  workers: number;
  threads: number;
  seed?: number;
  accumulate: number;
  dropPath?: number;
  lglKernel?: number | 'auto';
  skipNonfinite?: boolean;
  skipUnpaired?: boolean;
  valEvery: number;
  out?: string;
  resume?: string;
  demo?: 'busi' | 'ct';
  intensity?: string;
  window?: string;
  axis: SliceAxis;
  sliceContext: number;
  memoryMb: number;
  volumeIndex?: number;
  init?: string;
}

/**
 * --init: a bundled name stays a name (the package finds its file), a file becomes an absolute path (resume from
 * anywhere); the file must hold weights of the --model being trained.
 */
async function initWeights(f: TrainFlags): Promise<string | null> {
  if (f.init === undefined) return null;
  const path = weightsPath(f.init);
  const meta = (await readSafetensorsFile(path)).metadata;
  if (meta.model && meta.model !== f.model) throw new UserError(`--init ${f.init}: holds ${meta.model} weights, not ${f.model}: pass --model ${meta.model}`);
  return path === f.init ? resolve(f.init) : f.init;
}

/** The flags that mean the same for images and volumes. */
const optimizerFlags = (f: TrainFlags) => ({ lr: f.lr, optimizer: f.optimizer, momentum: f.momentum, weightDecay: f.weightDecay, schedule: f.schedule, warmupEpochs: f.warmupEpochs });
const runFlags = (f: TrainFlags) => ({
  threads: f.threads,
  workers: f.workers,
  accumulate: f.accumulate,
  dropPath: f.dropPath ?? null,
  skipNonFinite: f.skipNonfinite ?? false,
  valEvery: f.valEvery,
});

/** TransUNet's Synapse schedule, the default for volume datasets (DESIGN §10). */
const VOLUME_DEFAULTS = { size: 224, batch: 24, epochs: 150, seed: 1234 };

/** The intensity preset: --window, else --intensity, else from dataset.json's channel name (nnU-Net: "CT" or not), else CT. */
function volumeIntensity(f: TrainFlags, channels: string[], hasDatasetJson: boolean): Intensity {
  if (f.window !== undefined && f.intensity !== undefined) throw new UserError('give --window or --intensity, not both');
  if (f.window !== undefined) return parseWindow(f.window);
  if (f.intensity !== undefined) return parseIntensity(f.intensity);
  if (!hasDatasetJson) return { kind: 'ct' };
  return channels.every((c) => c.trim().toLowerCase() === 'ct') ? { kind: 'ct' } : { kind: 'mri' };
}

/** Without a dataset.json the classes are the label values 0..max found in the label maps (one pass over them). */
async function labelClasses(ds: VolumeDataset): Promise<number> {
  console.log(`${ds.root}: no dataset.json naming the labels: reading the ${ds.cases.length} label maps to count the classes`);
  let max = 1;
  for (const c of ds.cases) {
    const v = await readVolume(c.label!);
    for (const x of v.data) if (x > max) max = x;
  }
  if (!Number.isInteger(max) || max > 255) throw new UserError(`${ds.root}: label maps hold values up to ${max}; labels must be integers 0..255 (add a dataset.json naming them)`);
  return max + 1;
}

async function volumeConfig(f: TrainFlags, data: string): Promise<TrainConfig> {
  const ds = await scanVolumeDataset(data);
  reportPairing(data, ds.problems, f.skipUnpaired);
  if (ds.cases.length < 2) throw new UserError(`${data}: ${ds.cases.length} labelled case(s); training needs at least 2 (the split is by case)`);
  const context = f.sliceContext as 0 | 1;
  if (context !== 0 && context !== 1) throw new UserError(`--slice-context must be 0 or 1, got ${f.sliceContext}`);
  const classes = ds.labels ? classTable(ds.labels, 0).classValues.length : await labelClasses(ds);
  const config: TrainConfig = {
    ...PAPER_DEFAULTS,
    model: f.model,
    data,
    trainSplit: f.split ? resolve(f.split) : null,
    valSplit: f.valSplit ? resolve(f.valSplit) : null,
    val: f.val,
    epochs: f.epochs ?? VOLUME_DEFAULTS.epochs,
    batch: f.batch ?? VOLUME_DEFAULTS.batch,
    dropLast: f.dropLast ?? PAPER_DEFAULTS.dropLast,
    augmentAfterResize: false,
    size: f.size ?? VOLUME_DEFAULTS.size,
    inChannels: ds.channels.length * (2 * context + 1),
    classes,
    ...optimizerFlags(f),
    seed: f.seed ?? VOLUME_DEFAULTS.seed,
    ...runFlags(f),
    volume: {
      intensity: volumeIntensity(f, ds.channels, ds.labels !== undefined || ds.layout === 'nnunet'),
      axis: f.axis,
      context,
      memoryMb: f.memoryMb,
      volumeIndex: f.volumeIndex ?? null,
    },
  };
  Object.assign(config, await lglKernelFromFlags(f, config));
  checkConfig(config);
  return { ...config, init: await initWeights(f) };
}

/**
 * --lgl-kernel for a new run: MobileUtr models record their kernel (given, measured with auto, else 9); other models
 * take none. `auto` measures the 2-D training masks (src/train/lgl-auto.ts) and prints what it found.
 */
async function lglKernelFromFlags(f: TrainFlags, config: TrainConfig, ds?: Dataset): Promise<Pick<TrainConfig, 'lglKernel' | 'lglKernelAuto'>> {
  if (!MODELS.get(config.model)?.lglKernel) {
    if (f.lglKernel !== undefined) throw new UserError(`--lgl-kernel applies to MobileUtr (mobileutr, mobileutr-l) only; ${config.model} has no LGL blocks`);
    return {};
  }
  // fine-tuning keeps the network of its starting weights
  let init: number | undefined;
  if (f.init !== undefined) {
    const file = await readSafetensorsFile(weightsPath(f.init));
    init = file.metadata.lgl_kernel !== undefined ? Number(file.metadata.lgl_kernel) : lglKernelOfTensors(file.tensors);
  }
  const differs = (k: number, how: string) => {
    if (init !== undefined && k !== init) throw new UserError(`--lgl-kernel ${how}${k}, but --init ${f.init} holds LGL kernel ${init} weights; leave --lgl-kernel out to fine-tune with theirs`);
  };
  if (f.lglKernel !== 'auto') {
    if (f.lglKernel !== undefined) differs(f.lglKernel, '');
    return { lglKernel: f.lglKernel ?? init ?? LGL_KERNEL_DEFAULT, lglKernelAuto: null };
  }
  if (!ds) throw new UserError('--lgl-kernel auto measures 2-D training masks; for volume datasets give --lgl-kernel N');
  const m = await autoLglKernel(config, ds);
  console.log(describeMeasurement(m));
  differs(m.kernel, 'auto chose ');
  return { lglKernel: m.kernel, lglKernelAuto: m };
}

const timestamp = () => new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);

async function configFromFlags(f: TrainFlags): Promise<TrainConfig> {
  if (f.demo !== undefined && f.data !== undefined) throw new UserError('give --data or --demo, not both');
  if (f.demo === 'ct') {
    const ct = { ...f, split: join(CT_SAMPLE_DATA, 'train.txt'), valSplit: join(CT_SAMPLE_DATA, 'val.txt') };
    return volumeConfig({ ...ct, epochs: f.epochs ?? CT_DEMO.epochs, size: f.size ?? CT_DEMO.size, batch: f.batch ?? CT_DEMO.batch }, CT_SAMPLE_DATA);
  }
  const demo = f.data === undefined;
  // absolute paths, so that --resume works from any working directory
  const data = resolve(f.data ?? SAMPLE_DATA);
  if (await detectVolumeLayout(data)) return volumeConfig(f, data);
  const ds = await scanDataset(data);
  reportPairing(data, ds.problems, f.skipUnpaired);
  const config: TrainConfig = {
    ...PAPER_DEFAULTS,
    model: f.model,
    data,
    trainSplit: f.split ? resolve(f.split) : demo ? join(SAMPLE_DATA, 'train.txt') : null,
    valSplit: f.valSplit ? resolve(f.valSplit) : demo ? join(SAMPLE_DATA, 'val.txt') : null,
    val: f.val,
    epochs: f.epochs ?? (demo ? DEMO.epochs : PAPER_DEFAULTS.epochs),
    batch: f.batch ?? (demo ? DEMO.batch : PAPER_DEFAULTS.batch),
    dropLast: f.dropLast ?? PAPER_DEFAULTS.dropLast,
    augmentAfterResize: f.augmentAfterResize ?? PAPER_DEFAULTS.augmentAfterResize,
    size: f.size ?? (demo ? DEMO.size : PAPER_DEFAULTS.size),
    inChannels: f.inChannels,
    classes: ds.classes === 1 ? 1 : ds.classes + 1,
    ...optimizerFlags(f),
    seed: f.seed ?? PAPER_DEFAULTS.seed,
    ...runFlags(f),
  };
  Object.assign(config, await lglKernelFromFlags(f, config, ds));
  checkConfig(config);
  return { ...config, init: await initWeights(f) };
}

function readRunConfig(runDir: string): TrainConfig {
  const path = join(runDir, 'config.json');
  if (!existsSync(path)) throw new UserError(`${runDir}: not a training run (no config.json)`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as TrainConfig;
  } catch {
    throw new UserError(`${path}: not valid JSON`);
  }
}

export function registerTrain(program: Command): void {
  addDeviceOption(
    program
      .command('train')
      .description(COMMAND_DESCRIPTIONS.train)
      .addHelpText('after', TRAINING_ENVIRONMENT_HELP),
  )
    .option('-d, --data <dir>', 'dataset folder: images/<id>.<ext> + masks/0/<id>.png, or volumes (nnU-Net imagesTr/ + labelsTr/ + dataset.json, or images/<case>.nii.gz + labels/<case>.nii.gz); default: the bundled BUSI sample (demo)')
    .addOption(new Option('--demo <sample>', 'a short demo on a bundled sample: busi (ultrasound, the default without --data) or ct (a real CT, 8 organs)').choices(['busi', 'ct']))
    .option('--split <file>', 'training ids (one per line)')
    .option('--val-split <file>', 'validation ids (one per line)')
    .option('--val <fraction>', 'validation fraction of a random split when no split files are given', fractionOption, PAPER_DEFAULTS.val)
    .addOption(new Option('-m, --model <name>', 'architecture').choices([...MODELS.keys()]).default(PAPER_DEFAULTS.model))
    .option('--epochs <n>', `epochs (default ${PAPER_DEFAULTS.epochs}; volumes ${VOLUME_DEFAULTS.epochs}; demo ${DEMO.epochs})`, intOption(1))
    .option('--batch <n>', `batch size (default ${PAPER_DEFAULTS.batch}; volumes ${VOLUME_DEFAULTS.batch})`, intOption(2))
    .option('--drop-last', 'drop the last, smaller batch of each epoch (the original trains it: drop_last=False)')
    .option('--augment-after-resize', 'rotate and flip the resized image (less memory and work; the original augments the stored image, then resizes)')
    .option('-s, --size <pixels>', `input size, a multiple of 16, 32 for unext (default ${PAPER_DEFAULTS.size}; volumes ${VOLUME_DEFAULTS.size}; demo ${DEMO.size})`, intOption(16))
    .option('--in-channels <n>', 'image channels the model takes', intOption(1), PAPER_DEFAULTS.inChannels)
    .option('--lr <rate>', 'peak learning rate', positiveOption, PAPER_DEFAULTS.lr)
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['sgd', 'adamw']).default(PAPER_DEFAULTS.optimizer))
    .option('--momentum <m>', 'SGD momentum', Number, PAPER_DEFAULTS.momentum)
    .option('--weight-decay <wd>', 'weight decay', Number, PAPER_DEFAULTS.weightDecay)
    .addOption(new Option('--schedule <name>', 'learning-rate schedule').choices(['poly', 'cosine', 'constant']).default(PAPER_DEFAULTS.schedule))
    .option('--warmup-epochs <n>', 'linear warm-up epochs', Number, PAPER_DEFAULTS.warmupEpochs)
    .option('--workers <n>', 'images decoded in parallel', intOption(1), PAPER_DEFAULTS.workers)
    .option('--threads <n>', 'ONNX Runtime intra-op threads', intOption(1), PAPER_DEFAULTS.threads)
    .option('--seed <n>', `random seed (split, shuffling, augmentation, DropPath, init; default ${PAPER_DEFAULTS.seed}, volumes ${VOLUME_DEFAULTS.seed})`, intOption(0))
    .option('--accumulate <n>', 'micro-batches per optimizer step (gradient accumulation)', intOption(1), 1)
    .option('--drop-path <rate>', 'override the DropPath rate (MobileUtr: 0.1 in the LGL bottleneck)', Number)
    .option('--lgl-kernel <n|auto>', `${LGL_KERNEL_HELP.replace(', or from the weights file', '')}; auto: D/16 from the mean diameter D of the training masks' objects at the input size, odd, clamped to 3..15`, lglKernelOrAutoOption)
    .option('--skip-nonfinite', 'skip batches with a non-finite loss or gradient instead of stopping')
    .option('--skip-unpaired', 'leave out images without masks (and masks without images) with a warning, instead of stopping')
    .option('--val-every <n>', 'validate every n epochs', intOption(1), 1)
    .option('-o, --out <dir>', 'run folder (default runs/<model>-<time>)')
    .option('--resume <run>', 'continue the run in this folder from its last checkpoint')
    .option('--init <weights>', `fine-tune: start from these weights (.safetensors of the same --model) instead of a fresh initialisation; bundled: ${[...PRETRAINED.keys()].join(', ')}`)
    .option('--intensity <preset>', 'volumes: ct (HU clipped to [-125, 275], scaled to [0, 1]), mri (per-volume 0.5-99.5 percentile clip, z-score) or a window L,W; default from dataset.json\'s channel name (CT or not), else ct')
    .option('--window <L,W>', 'volumes: intensity window, level and width (e.g. 40,400)')
    .addOption(new Option('--axis <axis>', 'volumes: slice axis').choices([...SLICE_AXES]).default('axial'))
    .option('--slice-context <n>', 'volumes: 1 feeds the neighbouring slices as extra channels (2.5-D)', intOption(0), 0)
    .option('--memory-mb <n>', 'volumes: budget for decoded volumes held at once', intOption(16), 1024)
    .option('--volume-index <n>', 'volumes: the volume of 4-D files to use', intOption(0))
    .action(
      action(async (flags: TrainFlags) => {
        // first: a device that cannot run stops the command before the data is scanned. Not kept in config.json:
        // a run may be resumed on another device (with --resume and --device)
        const device = await deviceFromFlags(flags);
        const resume = flags.resume !== undefined;
        const runDir = flags.resume ?? flags.out ?? join('runs', `${flags.model}-${timestamp()}`);
        if (!resume && existsSync(join(runDir, 'config.json'))) {
          // a run stopped before its first checkpoint (bad data found, a crash) has nothing to keep: start it over
          if (existsSync(join(runDir, 'resume.safetensors'))) throw new UserError(`${runDir} already holds a run: pass --resume ${runDir} to continue it, or another --out`);
          console.log(`${runDir} holds a run that stopped before its first checkpoint: starting it over`);
        }
        const config = resume ? readRunConfig(runDir) : await configFromFlags(flags);
        if (!resume && flags.demo === 'ct')
          console.log(`demo run on the bundled CT (${CT_SAMPLE_DATA}: two interleaved halves of one scan, 8 organs from a model, not manual labels), ${config.epochs} epochs at ${config.size}x${config.size}`);
        else if (!resume && flags.data === undefined)
          console.log(`No --data given: demo run on the bundled BUSI sample (${SAMPLE_DATA}), ${config.epochs} epochs at ${config.size}x${config.size}. Pass --data DIR to train on your images.`);
        console.log(
          `${resume ? 'resuming' : 'training'} ${config.model} on ${config.data}: ${config.epochs} epochs, batch ${config.batch}, ${config.size}x${config.size}${config.lglKernel !== undefined ? `, LGL kernel ${config.lglKernel}` : ''}, ${config.optimizer} lr ${config.lr} (${config.schedule}), seed ${config.seed}, ${config.threads} threads${device === 'webgpu' ? ' (WebGPU)' : ''} -> ${runDir}`,
        );

        const controller = new AbortController();
        let interrupts = 0;
        const onSigint = () => {
          interrupts++;
          if (interrupts > 1) {
            console.error('\ninterrupted again: exiting now; the last epoch checkpoint is intact');
            process.exit(130);
          }
          console.error('\ninterrupt: finishing the current step and saving a checkpoint (Ctrl-C again to quit at once)');
          controller.abort();
        };
        process.on('SIGINT', onSigint);
        process.on('SIGTERM', onSigint);

        let bar: ProgressLine | undefined;
        let barEpoch = 0;
        const started = performance.now();
        const result = await runTraining(runDir, config, {
          resume,
          device,
          signal: controller.signal,
          onLog: (line) => console.error(line),
          onStep: (s) => {
            if (s.epoch !== barEpoch) {
              bar?.done();
              bar = new ProgressLine(`epoch ${s.epoch}/${config.epochs}`, s.batches, 'img');
              barEpoch = s.epoch;
            }
            bar!.update(s.batch, { loss: s.loss.toFixed(4), lr: s.lr.toExponential(2) }, s.batch * config.batch);
          },
          onEpoch: (r, best) => {
            bar?.done();
            bar = undefined;
            barEpoch = 0;
            const val = r.val_iou === null ? '' : `  val IoU ${(r.val_iou * 100).toFixed(2)}  Dice ${(r.val_dice! * 100).toFixed(2)}  F1 ${(r.val_f1! * 100).toFixed(2)}`;
            const bestText = best ? `  best IoU ${(best.iou * 100).toFixed(2)} (epoch ${best.epoch})` : '';
            console.log(
              `epoch ${r.epoch}/${config.epochs}  loss ${r.train_loss.toFixed(4)}${val}${bestText}  ${r.images_per_s.toFixed(1)} img/s  ${formatDuration((performance.now() - started) / 1000)}`,
            );
          },
        });
        bar?.done();
        process.off('SIGINT', onSigint);
        process.off('SIGTERM', onSigint);
        if (result.status === 'interrupted') {
          console.log(`saved a checkpoint at epoch ${result.position.epoch + 1}, batch ${result.position.batchInEpoch}: continue with  mobileutr train --resume ${runDir}`);
          process.exitCode = 130;
          return;
        }
        const best = result.position.best;
        console.log(`done: ${runDir}/best.safetensors${best ? ` (val IoU ${(best.iou * 100).toFixed(2)} at epoch ${best.epoch})` : ''}, last.safetensors, metrics.csv, curves.png`);
      }),
    );
}
