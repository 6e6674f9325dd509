import { InvalidArgumentError, type Command } from 'commander';
import { checkDataset, type CheckReport } from '../data/check.ts';
import { ProgressLine } from './progress.ts';
import { action, intOption } from './run.ts';

const sizeOption = (value: string): number => {
  const n = intOption(16)(value);
  if (n % 16 !== 0) throw new InvalidArgumentError(`must be a multiple of 16 (the network downsamples 4 times), got ${n}.`);
  if (n > 4096) throw new InvalidArgumentError(`must be at most 4096, got ${n}.`);
  return n;
};

export function summaryLine(r: CheckReport): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return (
    `${r.root}: ${plural(r.images, 'image')}, ${plural(r.masks, 'mask')} in ${plural(r.classes, 'class folder')}, ` +
    `${r.usable} usable pairs: ${plural(r.counts.error, 'error')}, ${plural(r.counts.warning, 'warning')}, ${plural(r.counts.info, 'note')}`
  );
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('check a dataset folder in one pass: layout, pairing, every image and mask decoded, sizes, mask values, duplicates, split files; exits 1 when there are errors')
    .requiredOption('-d, --data <dir>', 'dataset folder (images/<id>.<ext>, masks/<k>/<id>.png)')
    .option('-s, --size <pixels>', 'model input size (a multiple of 16): also report masks whose foreground vanishes at that size', sizeOption)
    .option('-q, --quiet', 'print errors and warnings only (no notes)')
    .action(
      action(async (o: { data: string; size?: number; quiet?: boolean }) => {
        let progress: ProgressLine | undefined;
        const report = await checkDataset(o.data, {
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
