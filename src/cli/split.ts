import { join } from 'node:path';
import type { Command } from 'commander';
import { scanDataset } from '../data/dataset.ts';
import { makeSplit, writeSplitFile } from '../data/split.ts';
import { action, fractionOption, intOption } from './run.ts';

export function registerSplit(program: Command): void {
  program
    .command('split')
    .description('write a seeded random train/val split of a dataset folder (train.txt, val.txt)')
    .requiredOption('-d, --data <dir>', 'dataset folder (images/<id>.<ext>, masks/0/<id>.png)')
    .option('--val <fraction>', 'validation fraction', fractionOption, 0.3)
    .option('--seed <n>', 'random seed', intOption(0), 41)
    .option('-o, --out <dir>', 'where to write the split files (default: the dataset folder)')
    .action(
      action(async (o: { data: string; val: number; seed: number; out?: string }) => {
        const ds = await scanDataset(o.data);
        for (const p of ds.problems) console.warn(`warning: ${p} (skipped)`);
        const { train, val } = makeSplit(ds.ids, o.val, o.seed);
        const dir = o.out ?? o.data;
        await writeSplitFile(join(dir, 'train.txt'), train);
        await writeSplitFile(join(dir, 'val.txt'), val);
        console.log(`${ds.ids.length} pairs: ${train.length} in ${join(dir, 'train.txt')}, ${val.length} in ${join(dir, 'val.txt')} (seed ${o.seed})`);
      }),
    );
}
