import { join } from 'node:path';
import type { Command } from 'commander';
import { scanDataset } from '../data/dataset.ts';
import { detectVolumeLayout } from '../data/volume/dataset.ts';
import { volumeMetaFrom } from '../data/volume/model-meta.ts';
import { readSafetensorsFile } from '../io/safetensors.ts';
import { evaluateVolumes } from './eval-volume.ts';
import { encodePng } from '../data/image.ts';
import { BatchLoader, collate } from '../data/loader.ts';
import { readSplitFile } from '../data/split.ts';
import { evaluate, type ImageResult } from '../eval/evaluate.ts';
import { drawOverlay } from '../eval/overlay.ts';
import { htmlReport, perImageCsv, summaryLines, type ReportCase } from '../eval/report.ts';
import { logitsToMask } from '../pipeline/postprocess.ts';
import { Segmenter } from '../pipeline/segmenter.ts';
import { addDeviceOption, deviceFromFlags, type DeviceFlags } from './device-option.ts';
import { addModelOptions, modelFromFlags, requireImageChannels, type ModelFlags } from './model-options.ts';
import { ProgressLine } from './progress.ts';
import { action, ensureOutputDir, intOption, reportPairing, writeOutput } from './run.ts';
import { COMMAND_DESCRIPTIONS } from './descriptions.ts';

interface EvalFlags extends ModelFlags, DeviceFlags {
  data: string;
  split?: string;
  out: string;
  threads: number;
  cases: number;
  skipUnpaired?: boolean;
  protocol: string;
  batch: number;
  volumeIndex?: number;
}

export function registerEval(program: Command): void {
  addDeviceOption(addModelOptions(program.command('eval')
      .description(COMMAND_DESCRIPTIONS.eval), {
    weights: true,
  }))
    .requiredOption('-d, --data <dir>', 'dataset folder')
    .option('--split <file>', 'ids to evaluate (default: all pairs)')
    .option('-o, --out <dir>', 'output folder', 'eval-out')
    .option('--threads <n>', 'ONNX Runtime threads', intOption(1), 2)
    .option('--cases <n>', 'worst and best cases shown in the report', intOption(0), 6)
    .option('--skip-unpaired', 'leave out images without masks (and masks without images) with a warning, instead of stopping')
    .option('--protocol <name>', 'volumes: mm (HD95/ASSD in mm with the voxel spacing, as medpy voxelspacing and MONAI spacing) or transunet (TransUNet test_single_volume: HD95 in voxels, its empty-mask rules)', 'mm')
    .option('--batch <n>', 'volumes: slices per network run', intOption(1), 8)
    .option('--volume-index <n>', 'volumes: the volume of 4-D files to use', intOption(0))
    .action(
      action(async (flags: EvalFlags) => {
        // first: a device that cannot run stops the command before any data is read
        const device = await deviceFromFlags(flags);
        if (!flags.weights) console.warn('warning: no --weights given: evaluating default-initialised (untrained) weights');
        const model = await modelFromFlags(flags);
        if (await detectVolumeLayout(flags.data)) {
          const meta = flags.weights ? volumeMetaFrom((await readSafetensorsFile(flags.weights)).metadata, flags.weights) : undefined;
          await evaluateVolumes(flags, model, meta, device);
          return;
        }
        requireImageChannels(model, flags.weights);
        const ds = await scanDataset(flags.data);
        reportPairing(flags.data, ds.problems, flags.skipUnpaired);
        const ids = flags.split ? await readSplitFile(flags.split, ds.ids) : ds.ids;
        await ensureOutputDir(flags.out);
        const segmenter = await Segmenter.create(model, { threads: flags.threads, device });
        const loader = new BatchLoader(ds, { size: model.options.size, inChannels: model.options.inChannels });
        const progress = new ProgressLine('eval', ids.length);
        const result = await evaluate(model, segmenter, ds, ids, (done) => progress.update(done), loader);
        progress.done();

        await writeOutput(join(flags.out, 'per_image.csv'), perImageCsv(result));
        await writeOutput(
          join(flags.out, 'summary.json'),
          `${JSON.stringify({ model: model.name, weights: flags.weights ?? null, data: flags.data, split: flags.split ?? null, images: ids.length, ...result.summary }, null, 2)}\n`,
        );
        const ranked = result.perImage.filter((r) => r.cls === 0).sort((a, b) => a.scores.iou - b.scores.iou);
        const render = async (r: ImageResult): Promise<ReportCase> => {
          const sample = await loader.sample(r.id);
          const { size, classes } = model.options;
          const logits = await segmenter.logits(collate([sample], model.options.inChannels).images, 1);
          const pred = classes === 1 ? logitsToMask(logits, 1, size * size) : logitsToMask(logits, classes, size * size).map((c) => (c === 1 ? 1 : 0));
          const rgb = drawOverlay({ pixels: sample.image, width: size, height: size, channels: sample.channels }, pred, sample.mask.subarray(0, size * size));
          return { result: r, png: await encodePng(rgb, size, size, 3) };
        };
        const worst = await Promise.all(ranked.slice(0, flags.cases).map(render));
        const best = await Promise.all(ranked.slice(-flags.cases).reverse().map(render));
        await writeOutput(join(flags.out, 'report.html'), htmlReport(`${model.name} on ${flags.data}`, result, worst, best));
        await segmenter.release();
        for (const line of summaryLines(result)) console.log(line);
        console.log(`wrote ${join(flags.out, 'per_image.csv')}, summary.json, report.html`);
      }),
    );
}
