import { InvalidArgumentError, type Command } from 'commander';
import { checkDataset, type CheckReport } from '../data/check.ts';
import { UserError } from '../errors.ts';
import { ProgressLine } from './progress.ts';
import { action, intOption } from './run.ts';
import { COMMAND_DESCRIPTIONS } from './descriptions.ts';

const sizeOption = (value: string): number => {
  const n = intOption(16)(value);
  if (n % 16 !== 0) throw new InvalidArgumentError(`must be a multiple of 16 (the network downsamples 4 times), got ${n}.`);
  if (n > 4096) throw new InvalidArgumentError(`must be at most 4096, got ${n}.`);
  return n;
};

export function summaryLine(r: CheckReport): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (r.layout && r.layout !== '2d')
    return (
      `${r.root}: ${r.layout === 'nnunet' ? 'nnU-Net' : 'volume'} dataset, ${plural(r.images, 'case')}, ${plural(r.masks, 'label map')}, ${plural(r.classes, 'label')} in dataset.json, ` +
      `${r.usable} usable cases: ${plural(r.counts.error, 'error')}, ${plural(r.counts.warning, 'warning')}, ${plural(r.counts.info, 'note')}`
    );
  return (
    `${r.root}: ${plural(r.images, 'image')}, ${plural(r.masks, 'mask')} in ${plural(r.classes, 'class folder')}, ` +
    `${r.usable} usable pairs: ${plural(r.counts.error, 'error')}, ${plural(r.counts.warning, 'warning')}, ${plural(r.counts.info, 'note')}`
  );
}

export function registerCheck(program: Command): void {
  program
    .command('check')
      .description(COMMAND_DESCRIPTIONS.check)
    .argument('[folder]', 'dataset folder (same as --data)')
    .option('-d, --data <dir>', 'dataset folder (images/<id>.<ext>, masks/<k>/<id>.png; or a volume dataset)')
    .option('-s, --size <pixels>', 'model input size (a multiple of 16): also report masks whose foreground vanishes at that size', sizeOption)
    .option('-q, --quiet', 'print errors and warnings only (no notes)')
    .action(
      action(async (folder: string | undefined, o: { data?: string; size?: number; quiet?: boolean }) => {
        const data = o.data ?? folder;
        if (!data) throw new UserError('check: give the dataset folder (mobileutr check <folder>, or --data <folder>)');
        if (o.data && folder && o.data !== folder) throw new UserError(`check: two dataset folders given (${folder} and --data ${o.data})`);
        let progress: ProgressLine | undefined;
        const report = await checkDataset(data, {
          size: o.size,
          onProgress: process.stderr.isTTY
            ? (done, total) => {
                progress ??= new ProgressLine('check', total);
                progress.update(done);
              }
            : undefined,
        });
        progress?.done();
        for (const f of report.findings) if (!(o.quiet && f.severity === 'info')) console.log(`${f.severity}: ${f.path}: ${f.message}`);
        console.log(summaryLine(report));
        if (report.counts.error > 0) process.exitCode = 1;
      }),
    );
}
