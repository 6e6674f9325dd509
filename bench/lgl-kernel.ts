// The adaptive LGL kernel against the official 9x9 (issue 13): MobileUtr trained with `--lgl-kernel 9` and with
// `--lgl-kernel auto` on one split of a dataset, with the same schedule, for several seeds, as a user runs it
// (`mobileutr train`, one run after the other). Prints the kernel auto chose, each run's best validation IoU and
// F1 (the official checkpoint choice), mean ± sample std per kernel, and the paired difference per seed.
//
//   npm run bench:lgl                                    # BUSI official split 1, schedule cpu-e5-64, seeds 41,42,43
//   npm run bench:lgl -- --schedule cpu-e20-128 --seeds 41 --split 2
//   npm run bench:lgl -- --data DIR --train-ids a.txt --val-ids b.txt    # another dataset
//
// Run folders: <out>/k<kernel>-seed<seed>/; running the command again keeps finished runs and resumes interrupted
// ones. Results: <out>/results.json and results.txt.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { COMPARE_SCHEDULES } from '../src/cli/compare.ts';
import { bestEpoch, recordedEpochs, runState } from '../src/compare/plan.ts';
import { mean, sampleStd } from '../src/util/stats.ts';

const o = new Command()
  .description('MobileUtr with --lgl-kernel 9 and auto, same split and schedule, several seeds')
  .option('--data <dir>', 'dataset folder', fileURLToPath(new URL('../../shared/datasets/busi', import.meta.url)))
  .option('--split <k>', 'official split k: <data>/splits/official_{train,val}<k>.txt', '1')
  .option('--train-ids <file>', 'training ids instead of an official split')
  .option('--val-ids <file>', 'validation ids instead of an official split')
  .option('--schedule <name>', `named schedule of compare: ${Object.keys(COMPARE_SCHEDULES).join(', ')}`, 'cpu-e5-64')
  .option('--seeds <list>', 'seeds, comma-separated', '41,42,43')
  .option('--kernels <list>', 'kernels, comma-separated (odd numbers or auto)', '9,auto')
  .option('--threads <n>', 'ONNX Runtime threads', '2')
  .option('--out <dir>', 'results folder (default runs/lgl-<schedule>-split<k>)')
  .parse()
  .opts();

const fail = (msg: string): never => {
  console.error(`bench:lgl: ${msg}`);
  process.exit(2);
};
const schedule = COMPARE_SCHEDULES[o.schedule] ?? fail(`unknown --schedule ${o.schedule}: one of ${Object.keys(COMPARE_SCHEDULES).join(', ')}`);
const seeds = String(o.seeds).split(',').map(Number);
if (!seeds.every((s) => Number.isInteger(s) && s >= 0)) fail(`--seeds must be non-negative integers, got ${o.seeds}`);
const kernels = String(o.kernels).split(',');
if (!kernels.every((k) => k === 'auto' || /^\d+$/.test(k))) fail(`--kernels: odd numbers or auto, got ${o.kernels}`);
const data = resolve(o.data);
const trainIds = o.trainIds ? resolve(o.trainIds) : join(data, 'splits', `official_train${o.split}.txt`);
const valIds = o.valIds ? resolve(o.valIds) : join(data, 'splits', `official_val${o.split}.txt`);
for (const f of [data, trainIds, valIds]) if (!existsSync(f)) fail(`${f} not found`);
const out = resolve(o.out ?? `runs/lgl-${o.schedule}-split${o.split}`);
mkdirSync(out, { recursive: true });

const BIN = fileURLToPath(new URL('../bin/mobileutr.js', import.meta.url));
const common = ['--data', data, '--split', trainIds, '--val-split', valIds, '--epochs', String(schedule.epochs), '--size', String(schedule.size), '--batch', String(schedule.batch), '--threads', String(o.threads)];

interface Row {
  kernel: string;
  chosen: number;
  seed: number;
  epoch: number;
  iou: number;
  f1: number;
  seconds: number;
}
const rows: Row[] = [];
for (const seed of seeds) {
  for (const kernel of kernels) {
    const dir = join(out, `k${kernel}-seed${seed}`);
    const state = runState(dir, schedule.epochs);
    if (state !== 'finished') {
      console.log(`\n== --lgl-kernel ${kernel}, seed ${seed}: ${state === 'interrupted' ? 'resuming' : 'training'} (${dir})`);
      const args = state === 'interrupted' ? ['train', '--resume', dir] : ['train', ...common, '--seed', String(seed), '--lgl-kernel', kernel, '--out', dir];
      const r = spawnSync(process.execPath, [BIN, ...args], { stdio: 'inherit' });
      if (r.status !== 0) fail(`the run in ${dir} stopped (exit ${r.status ?? r.signal}); run the same command again to resume it`);
    }
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { lglKernel?: number };
    const best = bestEpoch(dir);
    const seconds = recordedEpochs(dir).reduce((s, l) => s + l.seconds, 0);
    rows.push({ kernel, chosen: config.lglKernel ?? 9, seed, epoch: best.epoch, iou: best.iou * 100, f1: best.f1 * 100, seconds });
  }
}

const pm = (v: number[]) => `${mean(v).toFixed(2)} ± ${sampleStd(v).toFixed(2)}`;
const lines: string[] = [];
lines.push(`MobileUtr --lgl-kernel ${kernels.join(' vs ')} on ${data}, train ${trainIds}, val ${valIds}`);
lines.push(`schedule ${o.schedule}: ${schedule.epochs} epochs at ${schedule.size}x${schedule.size}, batch ${schedule.batch}, ${o.threads} threads; best-validation-IoU epoch of each run`);
lines.push('');
lines.push(`${'kernel'.padEnd(8)} ${'K'.padStart(3)} ${'seed'.padStart(5)} ${'best ep.'.padStart(9)} ${'IoU'.padStart(7)} ${'F1'.padStart(7)} ${'train s'.padStart(8)}`);
for (const r of rows) lines.push(`${r.kernel.padEnd(8)} ${String(r.chosen).padStart(3)} ${String(r.seed).padStart(5)} ${String(r.epoch).padStart(9)} ${r.iou.toFixed(2).padStart(7)} ${r.f1.toFixed(2).padStart(7)} ${r.seconds.toFixed(0).padStart(8)}`);
lines.push('');
for (const k of kernels) {
  const of = rows.filter((r) => r.kernel === k);
  lines.push(`${k.padEnd(8)} IoU ${pm(of.map((r) => r.iou))}  F1 ${pm(of.map((r) => r.f1))}  (${of.length} seeds)`);
}
if (kernels.length === 2) {
  const [a, b] = kernels as [string, string];
  const diffs = seeds.map((s) => rows.find((r) => r.kernel === b && r.seed === s)!.iou - rows.find((r) => r.kernel === a && r.seed === s)!.iou);
  lines.push(`IoU ${b} - ${a}, paired by seed: ${diffs.map((d) => d.toFixed(2)).join(', ')}; mean ${pm(diffs)}`);
}
const text = lines.join('\n');
console.log(`\n${text}`);
writeFileSync(join(out, 'results.txt'), `${text}\n`);
writeFileSync(join(out, 'results.json'), `${JSON.stringify({ schedule: o.schedule, ...schedule, data, trainIds, valIds, threads: Number(o.threads), rows }, null, 2)}\n`);
console.log(`\nwritten: ${join(out, 'results.txt')}, ${join(out, 'results.json')}`);
