/**
 * The real datasets: ../shared/datasets next to the repo (DESIGN §7), or the folder in MOBILEUTR_DATASETS. Same
 * rules as the PyTorch fixtures (fixtures.ts): a test that needs a dataset fails under CI=true when it is missing;
 * elsewhere it reports itself as skipped, with the reason, and warns on stderr.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeWith } from './required-data.ts';

export const DATASETS = process.env.MOBILEUTR_DATASETS ? resolve(process.env.MOBILEUTR_DATASETS) : fileURLToPath(new URL('../../../shared/datasets', import.meta.url));

/** The folder of a dataset (images/, masks/0/), e.g. `datasetPath('busi')`. */
export const datasetPath = (name: string) => join(DATASETS, name);
/** Whether the dataset is there: its `marker` file or folder exists (images/ for the 2-D layout). */
export const hasDataset = (name: string, marker = 'images') => existsSync(join(DATASETS, name, marker));

/**
 * A suite that needs `../shared/datasets/<dataset>` (see test/support/required-data.ts for a missing one);
 * `marker` names a file or folder that must exist in it (volume sets have no images/, e.g. 'README.md').
 */
export function describeWithDataset(dataset: string, name: string, fn: () => void, marker = 'images'): void {
  describeWith(
    {
      present: hasDataset(dataset, marker),
      what: `the ${dataset} dataset`,
      missing: `dataset ${dataset} not found at ${datasetPath(dataset)} (../shared/datasets, or set MOBILEUTR_DATASETS)`,
      ciReason: 'a test against real data must not pass without it',
    },
    name,
    fn,
  );
}
