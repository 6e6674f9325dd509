import { join } from 'node:path';
import type { Command } from 'commander';
import { detectLayout, scanDataset } from '../data/dataset.ts';
import { scanVolumeDataset } from '../data/volume/dataset.ts';
import { makeSplit, writeSplitFile } from '../data/split.ts';
import { UserError } from '../errors.ts';
import { action, ensureOutputDir, fractionOption, fsProblem, intOption, reportPairing } from './run.ts';
import { COMMAND_DESCRIPTIONS } from './descriptions.ts';

export function registerSplit(program: Command): void {
  program
    .command('split')
      .description(COMMAND_DESCRIPTIONS.split)
    .requiredOption('-d, --data <dir>', 'dataset folder (images/<id>.<ext>, masks/0/<id>.png; or volumes: nnU-Net imagesTr/ + labelsTr/, images/<case>.nii.gz + labels/)')
    .option('--val <fraction>', 'validation fraction', fractionOption, 0.3)
    .option('--seed <n>', 'random seed', intOption(0), 41)
    .option('-o, --out <dir>', 'where to write the split files (default: the dataset folder)')
    .option('--skip-unpaired', 'leave out images without masks (and masks without images) with a warning, instead of stopping')
    .action(
      action(async (o: { data: string; val: number; seed: number; out?: string; skipUnpaired?: boolean }) => {
        const volumes = (await detectLayout(o.data)) !== '2d';
        // volumes: case ids, so that the slices of one patient are never on both sides
        const ds = volumes ? await scanVolumeDataset(o.data).then((v) => ({ ids: v.cases.map((c) => c.id), problems: v.problems })) : await scanDataset(o.data);
        reportPairing(o.data, ds.problems, o.skipUnpaired);
        const { train, val } = makeSplit(ds.ids, o.val, o.seed);
        const dir = o.out ?? o.data;
        await ensureOutputDir(dir);
        for (const [name, ids] of [['train.txt', train], ['val.txt', val]] as const) {
          const path = join(dir, name);
          await writeSplitFile(path, ids).catch((e: unknown) => {
            throw new UserError(`${path}: cannot write (${fsProblem(e)})`);
          });
        }
        console.log(`${ds.ids.length} ${volumes ? 'cases' : 'pairs'}: ${train.length} in ${join(dir, 'train.txt')}, ${val.length} in ${join(dir, 'val.txt')} (seed ${o.seed})`);
      }),
    );
}
