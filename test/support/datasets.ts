/**
 * The real datasets: ../shared/datasets next to the repo (DESIGN §7), or the folder in MOBILEUTR_DATASETS. Same
 * rules as the PyTorch fixtures (fixtures.ts): a test that needs a dataset fails under CI=true when it is missing;
 * elsewhere it reports itself as skipped, with the reason, and warns on stderr.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';

export const DATASETS = process.env.MOBILEUTR_DATASETS ? resolve(process.env.MOBILEUTR_DATASETS) : fileURLToPath(new URL('../../../shared/datasets', import.meta.url));

/** CI=true (any value except empty, 0 and false, as CI services set it). */
const isCI = !!process.env.CI && !['0', 'false'].includes(process.env.CI.toLowerCase());

/** The folder of a dataset (images/, masks/0/), e.g. `datasetPath('busi')`. */
export const datasetPath = (name: string) => join(DATASETS, name);
export const hasDataset = (name: string) => existsSync(join(DATASETS, name, 'images'));

const missing = (name: string) => `dataset ${name} not found at ${datasetPath(name)} (../shared/datasets, or set MOBILEUTR_DATASETS)`;

/**
 * A suite that needs `../shared/datasets/<dataset>`: runs when it is there; fails under CI=true when it is missing;
 * otherwise a single visibly skipped test with the reason (and a warning on stderr).
 */
export function describeWithDataset(dataset: string, name: string, fn: () => void): void {
  if (hasDataset(dataset)) describe(name, fn);
  else if (isCI)
    describe(name, () =>
      it(`has the ${dataset} dataset`, () => {
        throw new Error(`${missing(dataset)}; CI=true: a test against real data must not pass without it`);
      }),
    );
  else {
    console.warn(`SKIPPED "${name}": ${missing(dataset)} (under CI=true this is a failure)`);
    describe(name, () => it(`needs the ${dataset} dataset`, (ctx) => ctx.skip(missing(dataset))));
  }
}
