import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { Command } from 'commander';
import { IMAGE_EXTENSIONS } from '../data/dataset.ts';
import { encodePng } from '../data/image.ts';
import { UserError } from '../errors.ts';
import { drawOverlay } from '../eval/overlay.ts';
import { Segmenter } from '../pipeline/segmenter.ts';
import { addModelOptions, modelFromFlags, requireImageChannels, type ModelFlags } from './model-options.ts';
import { ProgressLine } from './progress.ts';
import { action, ensureOutputDir, intOption, writeOutput } from './run.ts';

interface PredictFlags extends ModelFlags {
  input: string;
  out: string;
  overlay?: boolean;
  prob?: boolean;
  threads: number;
}

async function inputFiles(input: string): Promise<string[]> {
  const info = await stat(input).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`${input}: ${e.code === 'ENOENT' ? 'not found' : `cannot read (${e.code ?? e.message})`}`);
  });
  if (!info.isDirectory()) return [input];
  const names = await readdir(input).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`${input}: cannot list the folder (${e.code ?? e.message})`);
  });
  const files = names.filter((f) => !f.startsWith('.') && IMAGE_EXTENSIONS.includes(extname(f).toLowerCase())).sort();
  if (files.length === 0) throw new UserError(`${input}: no images (${IMAGE_EXTENSIONS.join(' ')})`);
  // a.png and a.jpg would both write a.png: refuse rather than overwrite one with the other
  const seen = new Map<string, string>();
  for (const f of files) {
    const name = basename(f, extname(f));
    if (seen.has(name)) throw new UserError(`${join(input, f)}: same name as ${seen.get(name)}; both would write ${name}.png`);
    seen.set(name, f);
  }
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
        requireImageChannels(model, flags.weights);
        await ensureOutputDir(flags.out);
        const segmenter = await Segmenter.create(model, { threads: flags.threads });
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
      }),
    );
}
