import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SAMPLE_DATA } from '../../src/cli/train.ts';
import { scanDataset } from '../../src/data/dataset.ts';
import { makeSplit } from '../../src/data/split.ts';
import { UserError } from '../../src/errors.ts';
import { createModel } from '../../src/models/model.ts';
import { loadWeights } from '../../src/models/weights.ts';
import { PAPER_DEFAULTS, type TrainConfig } from '../../src/train/config.ts';
import { runTraining } from '../../src/train/loop.ts';
import { differingTensors } from '../support/tensors.ts';

/** A tiny but complete run on the bundled sample: 33 training images at 32x32, batch 4 -> 9 steps per epoch (the last of 1 image). */
const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...PAPER_DEFAULTS,
  data: SAMPLE_DATA,
  trainSplit: join(SAMPLE_DATA, 'train.txt'),
  valSplit: join(SAMPLE_DATA, 'val.txt'),
  classes: 1,
  size: 32,
  batch: 4,
  epochs: 2,
  threads: 1,
  ...over,
});

const tmp = () => mkdtempSync(join(tmpdir(), 'mobileutr-run-'));

describe('training runs', () => {
  it('write config, checkpoints, metrics and curves, and resume equals an uninterrupted run', async () => {
    const straight = tmp();
    const a = await runTraining(straight, config());
    expect(a.status).toBe('finished');
    for (const f of ['config.json', 'train.txt', 'val.txt', 'last.safetensors', 'best.safetensors', 'resume.safetensors', 'metrics.jsonl', 'metrics.csv', 'curves.png'])
      expect(existsSync(join(straight, f)), f).toBe(true);
    const records = readFileSync(join(straight, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.map((r) => r.epoch)).toEqual([1, 2]);
    // the last, smaller batch is trained (drop_last=False): 9 steps per epoch, not 8
    expect(records[1].step).toBe(18);
    // the lr of the epoch's last step, with the original timing: step i runs at 0.01·(1 − (i−1)/18)^0.9
    expect(records[0].lr).toBeCloseTo(0.01 * (1 - 7 / 18) ** 0.9, 12);
    expect(records[1].lr).toBeCloseTo(0.01 * (1 - 16 / 18) ** 0.9, 12);
    expect(records.every((r) => Number.isFinite(r.train_loss) && r.val_iou >= 0 && r.val_iou <= 1)).toBe(true);
    expect(readFileSync(join(straight, 'metrics.csv'), 'utf8').trim().split('\n')).toHaveLength(3);

    // the same run, stopped mid-epoch (as by Ctrl-C) after 5 steps, then resumed twice
    const split = tmp();
    const b1 = await runTraining(split, config(), { maxSteps: 5 });
    expect(b1.status).toBe('interrupted');
    expect(b1.position).toMatchObject({ epoch: 0, batchInEpoch: 5 });
    const b2 = await runTraining(split, config(), { resume: true, maxSteps: 6 });
    expect(b2.position).toMatchObject({ epoch: 1, batchInEpoch: 2 });
    const b3 = await runTraining(split, config(), { resume: true });
    expect(b3.status).toBe('finished');

    expect(differingTensors(b3.model.weights, a.model.weights)).toEqual([]);
    expect(b3.position.best).toEqual(a.position.best);
    expect(b3.position.history.map((r) => r.train_loss)).toEqual(a.position.history.map((r) => r.train_loss));
    // best.safetensors loads as a plain state_dict
    const reloaded = createModel('mobileutr', { size: 32 });
    await loadWeights(reloaded, join(split, 'best.safetensors'));
  });

  it('--drop-last drops the last, smaller batch: 8 steps per epoch', async () => {
    const r = await runTraining(tmp(), config({ dropLast: true, epochs: 1 }));
    expect(r.position.history[0]!.step).toBe(8);
    expect(r.position.history[0]!.lr).toBeCloseTo(0.01 * (1 - 6 / 8) ** 0.9, 12);
  });

  it('--accumulate 2: the last group of one micro-batch is applied at the end of the epoch, also across a resume', async () => {
    const straight = await runTraining(tmp(), config({ accumulate: 2, epochs: 1 }));
    expect(straight.position.history[0]!.step).toBe(5); // 9 micro-batches: 4 groups of 2, then 1 of 1 image
    // stopped right after the 4th step: the 9th micro-batch and the flush happen after the resume
    const run = tmp();
    expect((await runTraining(run, config({ accumulate: 2, epochs: 1 }), { maxSteps: 4 })).position).toMatchObject({ epoch: 0, batchInEpoch: 8 });
    const resumed = await runTraining(run, config({ accumulate: 2, epochs: 1 }), { resume: true });
    expect(resumed.position.history[0]!.step).toBe(5);
    expect(differingTensors(resumed.model.weights, straight.model.weights)).toEqual([]);
  });

  it('resume keeps the split the run started with; ids gone from the data stop with a clear error', async () => {
    // a copy of the sample, split at random (no split files): the split depends on the folder's contents
    const data = join(tmp(), 'data');
    for (const d of ['images', 'masks']) cpSync(join(SAMPLE_DATA, d), join(data, d), { recursive: true });
    const random = { trainSplit: null, valSplit: null, epochs: 1 };
    const run = tmp();
    const first = await runTraining(run, config({ ...random, data }), { maxSteps: 2 });
    expect(first.status).toBe('interrupted');
    const trainTxt = readFileSync(join(run, 'train.txt'), 'utf8');
    const valTxt = readFileSync(join(run, 'val.txt'), 'utf8');

    // a new image arrives between interruption and resume; drawing the split again would move val images into training
    cpSync(join(data, 'images', 'benign_001.png'), join(data, 'images', 'aaa_new.png'));
    cpSync(join(data, 'masks', '0', 'benign_001.png'), join(data, 'masks', '0', 'aaa_new.png'));
    const ids = (await scanDataset(data)).ids;
    expect(ids).toContain('aaa_new');
    const redrawn = makeSplit(ids, PAPER_DEFAULTS.val, PAPER_DEFAULTS.seed);
    expect(redrawn.train.some((id) => valTxt.split('\n').includes(id))).toBe(true);

    const resumed = await runTraining(run, config({ ...random, data }), { resume: true });
    expect(resumed.status).toBe('finished');
    expect(readFileSync(join(run, 'train.txt'), 'utf8')).toBe(trainTxt);
    expect(readFileSync(join(run, 'val.txt'), 'utf8')).toBe(valTxt);
    // it trained and validated exactly as an uninterrupted run on the unchanged sample
    const straight = await runTraining(tmp(), config({ ...random, data: SAMPLE_DATA }));
    expect(differingTensors(resumed.model.weights, straight.model.weights)).toEqual([]);
    expect(resumed.position.history).toHaveLength(1);
    expect(resumed.position.history[0]!.val_iou).toBe(straight.position.history[0]!.val_iou);
    expect(resumed.position.history[0]!.train_loss).toBe(straight.position.history[0]!.train_loss);

    // an image of the run's training split disappears: resuming names it and the file
    const gone = trainTxt.split('\n')[3]!;
    rmSync(join(data, 'images', `${gone}.png`));
    rmSync(join(data, 'masks', '0', `${gone}.png`));
    const error = await runTraining(run, config({ ...random, data }), { resume: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain(`${join(run, 'train.txt')}: 1 of the 31 ids this run was started with is no longer in ${data} ("${gone}")`);
  });

  it('a non-finite loss stops with a clear message, or skips the batch when asked', async () => {
    const failure = await runTraining(tmp(), config({ lr: 1e30, epochs: 1 })).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(UserError);
    expect((failure as Error).message).toMatch(/non-finite (loss|gradient) at epoch 1, step \d+ .*weights were not updated/);
    const skipped = await runTraining(tmp(), config({ lr: 1e30, epochs: 1, skipNonFinite: true }));
    expect(skipped.status).toBe('finished');
    expect(skipped.position.history[0]!.skipped_batches).toBeGreaterThan(0);
  });

  it('refuses a batch larger than the training set and a class count that does not fit the masks', async () => {
    await expect(runTraining(tmp(), config({ batch: 64 }))).rejects.toThrow(/fewer than one batch/);
    await expect(runTraining(tmp(), config({ classes: 3 }))).rejects.toThrow(/needs 1 output classes/);
  });
});
