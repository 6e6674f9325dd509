import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import { IMAGE_EXTENSIONS } from '../data/dataset.ts';
import { encodePng } from '../data/image.ts';
import { UserError } from '../errors.ts';
import { drawOverlay } from '../eval/overlay.ts';
import { Segmenter } from '../pipeline/segmenter.ts';
import { addModelOptions, modelFromFlags, type ModelFlags } from './model-options.ts';
import { ProgressLine } from './progress.ts';
import { action, intOption } from './run.ts';

interface PredictFlags extends ModelFlags {
  input: string;
  out: string;
  overlay?: boolean;
  prob?: boolean;
  threads: number;
}

async function inputFiles(input: string): Promise<string[]> {
  const info = await stat(input).catch(() => {
    throw new UserError(`${input}: not found`);
  });
  if (info.isFile()) return [input];
  const files = (await readdir(input)).filter((f) => IMAGE_EXTENSIONS.includes(extname(f).toLowerCase())).sort();
  if (files.length === 0) throw new UserError(`${input}: no images (${IMAGE_EXTENSIONS.join(' ')})`);
  return files.map((f) => join(input, f));
}

export function registerPredict(program: Command): void {
  addModelOptions(program.command('predict').description('write a mask PNG per image at its original size (and overlays, probability maps)'), {
    weights: true,
  })
    .requiredOption('-i, --input <path>', 'an image file or a folder of images')
    .requiredOption('-o, --out <dir>', 'output folder')
    .option('--overlay', 'also write <name>_overlay.png (mask over the image)')
    .option('--prob', 'also write <name>_prob.png (foreground probability, 0-255)')
    .option('--threads <n>', 'ONNX Runtime threads', intOption(1), 2)
    .action(
      action(async (flags: PredictFlags) => {
        if (!flags.weights) console.warn('warning: no --weights given: predicting with default-initialised (untrained) weights');
        const files = await inputFiles(flags.input);
        const model = await modelFromFlags(flags);
        const segmenter = await Segmenter.create(model, { threads: flags.threads });
        await mkdir(flags.out, { recursive: true });
        const progress = new ProgressLine('predict', files.length);
        let failed = 0;
        for (const [i, file] of files.entries()) {
          const name = basename(file, extname(file));
          try {
            const r = await segmenter.segment(file);
            await writeFile(join(flags.out, `${name}.png`), await encodePng(r.mask, r.width, r.height, 1));
            if (flags.prob) await writeFile(join(flags.out, `${name}_prob.png`), await encodePng(r.probability, r.width, r.height, 1));
            if (flags.overlay) await writeFile(join(flags.out, `${name}_overlay.png`), await encodePng(drawOverlay(r.image, r.mask), r.width, r.height, 3));
          } catch (e) {
            // one bad file in a folder should not stop the rest: report it and go on
            if (!(e instanceof UserError) || files.length === 1) throw e;
            console.error(`\nskipped: ${e.message}`);
            failed++;
          }
          progress.update(i + 1);
        }
        progress.done();
        await segmenter.release();
        console.log(`wrote ${files.length - failed} masks to ${flags.out}${failed ? ` (${failed} files skipped)` : ''}`);
        if (failed) process.exitCode = 1;
      }),
    );
}
