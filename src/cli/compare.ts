import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import type { Command } from 'commander';
import { browserLatency, DEFAULT_CHROMIUM } from '../compare/browser-latency.ts';
import { cpuLatencyMs, median, modelSize, type ModelCost } from '../compare/measure.ts';
import { bestEpoch, parseDataset, planRuns, recordedEpochs, runState, type PlannedRun } from '../compare/plan.ts';
import { bubblePlotSvg, csvTable, htmlReport, markdownTable, type TableRow } from '../compare/report.ts';
import { scanDataset } from '../data/dataset.ts';
import { UserError } from '../errors.ts';
import { MODELS, sizeMultipleOf } from '../models/registry.ts';
import { checkConfig, PAPER_DEFAULTS, type TrainConfig } from '../train/config.ts';
import { runTraining } from '../train/loop.ts';
import { COMMAND_DESCRIPTIONS, TRAINING_ENVIRONMENT_HELP } from './descriptions.ts';
import { formatDuration, ProgressLine } from './progress.ts';
import { action, ensureOutputDir, intOption, reportPairing, writeOutput } from './run.ts';

/** Named schedules: the paper's, and two short ones for CPUs (their times are in the README). */
export const COMPARE_SCHEDULES: Record<string, { epochs: number; size: number; batch: number; about: string }> = {
  'cpu-e5-64': { epochs: 5, size: 64, batch: 8, about: '5 epochs at 64x64, the short CPU schedule: the four default models on BUSI splits 1-3 in about an hour at 2 threads' },
  'cpu-e5-96': { epochs: 5, size: 96, batch: 8, about: '5 epochs at 96x96 (BUSI, four models, three splits: about two hours at 2 threads)' },
  'cpu-e20-128': { epochs: 20, size: 128, batch: 8, about: '20 epochs at 128x128, the schedule of repro:busi' },
  paper: { epochs: 300, size: 256, batch: 8, about: "the paper's schedule, 300 epochs at 256x256 (a GPU's work)" },
};
const DEFAULT_MODELS = ['mobileutr', 'unext', 'cmunext', 'unet'];

interface CompareFlags {
  data: string[];
  models: string;
  splits: string;
  schedule: string;
  epochs?: number;
  size?: number;
  batch?: number;
  threads: number;
  seed: number;
  out?: string;
  latencySize: number;
  latencyRuns: number;
  browser?: boolean;
  chromium: string;
  skipUnpaired?: boolean;
}

const list = (s: string) => s.split(',').map((v) => v.trim()).filter((v) => v !== '');

async function runConfig(run: PlannedRun, f: CompareFlags, schedule: { epochs: number; size: number; batch: number }): Promise<TrainConfig> {
  const ds = await scanDataset(run.dataset.dir);
  reportPairing(run.dataset.dir, ds.problems, f.skipUnpaired);
  const split = run.splitSource;
  const config: TrainConfig = {
    ...PAPER_DEFAULTS,
    model: run.model,
    data: run.dataset.dir,
    trainSplit: split.kind === 'files' ? split.train : null,
    valSplit: split.kind === 'files' ? split.val : null,
    epochs: schedule.epochs,
    size: schedule.size,
    batch: schedule.batch,
    classes: ds.classes === 1 ? 1 : ds.classes + 1,
    seed: split.kind === 'seeded' ? split.seed : f.seed,
    threads: f.threads,
  };
  checkConfig(config);
  return config;
}

/** The config of an interrupted run, which must be of the comparison's schedule. */
function savedConfig(dir: string, schedule: { epochs: number; size: number; batch: number }): TrainConfig {
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as TrainConfig;
  if (c.epochs !== schedule.epochs || c.size !== schedule.size || c.batch !== schedule.batch)
    throw new UserError(`${dir} holds a run of ${c.epochs} epochs at ${c.size}x${c.size}, batch ${c.batch}, not this comparison's schedule: use another --out, or the schedule it was started with`);
  return c;
}

/** Seconds per epoch measured so far in this comparison: per model where known, else over all runs. */
function epochSeconds(runs: readonly PlannedRun[]): (model: string) => number | undefined {
  const per = new Map<string, number[]>();
  for (const r of runs) for (const l of recordedEpochs(r.dir)) per.set(r.model, [...(per.get(r.model) ?? []), l.seconds]);
  const all = [...per.values()].flat();
  return (model) => {
    const xs = per.get(model) ?? all;
    return xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length : undefined;
  };
}

function remainingSeconds(runs: readonly PlannedRun[], epochs: number): number {
  const perEpoch = epochSeconds(runs);
  let total = 0;
  for (const r of runs) {
    const s = perEpoch(r.model);
    if (s === undefined) return Number.NaN;
    total += s * Math.max(0, epochs - recordedEpochs(r.dir).length);
  }
  return total;
}

async function measureCosts(models: readonly string[], f: CompareFlags): Promise<Map<string, ModelCost>> {
  const costs = new Map<string, ModelCost>();
  for (const model of models) {
    const { params, macs, onnx } = modelSize(model, f.latencySize);
    const cpuMs = await cpuLatencyMs(onnx, f.latencySize, f.threads, f.latencyRuns);
    const browserMs = f.browser ? median((await browserLatency(onnx, { size: f.latencySize, threads: f.threads, runs: f.latencyRuns, chromium: f.chromium })).ms) : null;
    console.log(`${model}: ${(params / 1e6).toFixed(2)} M parameters, ${(macs / 1e9).toFixed(2)} G MACs, CPU ${cpuMs.toFixed(1)} ms${browserMs === null ? '' : `, browser ${browserMs.toFixed(1)} ms`} (batch 1, ${f.latencySize}x${f.latencySize}, ${f.threads} threads)`);
    costs.set(model, { model, params, macs, cpuMs, browserMs });
  }
  return costs;
}

async function writeReport(out: string, runs: readonly PlannedRun[], costs: ReadonlyMap<string, ModelCost>, about: string): Promise<string> {
  const rows: TableRow[] = [];
  const groups = new Map<string, PlannedRun[]>();
  for (const r of runs) groups.set(`${r.dataset.name}\0${r.model}`, [...(groups.get(`${r.dataset.name}\0${r.model}`) ?? []), r]);
  for (const group of groups.values()) {
    const first = group[0]!;
    rows.push({ dataset: first.dataset.name, cost: costs.get(first.model)!, scores: group.map((r) => ({ split: r.split, ...bestEpoch(r.dir) })) });
  }
  const plots = new Map<string, string>();
  for (const dataset of new Set(rows.map((r) => r.dataset))) {
    const svg = bubblePlotSvg(dataset, rows.filter((r) => r.dataset === dataset));
    plots.set(dataset, svg);
    await writeOutput(join(out, `plot-${dataset}.svg`), svg);
    await writeOutput(join(out, `plot-${dataset}.png`), await sharp(Buffer.from(svg)).png().toBuffer());
  }
  const md = markdownTable(rows);
  await writeOutput(join(out, 'table.md'), `${md}\n${about}\n`);
  await writeOutput(join(out, 'table.csv'), csvTable(rows));
  await writeOutput(join(out, 'table.html'), htmlReport('mobileutr compare', about, rows, plots));
  return md;
}

/** Trains the runs in order, skipping finished ones and resuming an interrupted one; stops when `signal` aborts. */
async function trainAll(runs: readonly PlannedRun[], f: CompareFlags, schedule: { epochs: number; size: number; batch: number }, signal: AbortSignal): Promise<'finished' | 'interrupted'> {
  const started = performance.now();
  for (const [i, run] of runs.entries()) {
    const label = `[${i + 1}/${runs.length}] ${run.model} on ${run.dataset.name}, split ${run.split}`;
    const state = runState(run.dir, schedule.epochs);
    if (state === 'finished') {
      console.log(`${label}: finished earlier (${run.dir})`);
      continue;
    }
    const config = state === 'interrupted' ? savedConfig(run.dir, schedule) : await runConfig(run, f, schedule);
    const eta = remainingSeconds(runs, schedule.epochs);
    console.log(`${label}: ${state === 'interrupted' ? 'resuming' : 'training'} (all runs: ETA ${formatDuration(eta)}, ${formatDuration((performance.now() - started) / 1000)} so far)`);
    let bar: ProgressLine | undefined;
    let barEpoch = 0;
    const result = await runTraining(run.dir, config, {
      resume: state === 'interrupted',
      signal,
      onLog: (line) => console.error(line),
      onStep: (s) => {
        if (s.epoch !== barEpoch) {
          bar?.done();
          bar = new ProgressLine(`  ${run.model} s${run.split} epoch ${s.epoch}/${schedule.epochs}`, s.batches, 'img');
          barEpoch = s.epoch;
        }
        bar!.update(s.batch, { loss: s.loss.toFixed(4) }, s.batch * schedule.batch);
      },
      onEpoch: (r, best) => {
        bar?.done();
        bar = undefined;
        barEpoch = 0;
        const val = r.val_iou === null ? '' : `  val IoU ${(r.val_iou * 100).toFixed(2)}  F1 ${(r.val_f1! * 100).toFixed(2)}`;
        console.log(`  epoch ${r.epoch}/${schedule.epochs}  loss ${r.train_loss.toFixed(4)}${val}${best ? `  best ${(best.iou * 100).toFixed(2)}` : ''}  (all runs: ETA ${formatDuration(remainingSeconds(runs, schedule.epochs))})`);
      },
    });
    bar?.done();
    if (result.status === 'interrupted') {
      console.log(`stopped in ${run.dir}; run the same command again to resume the comparison there`);
      return 'interrupted';
    }
  }
  return 'finished';
}

export function registerCompare(program: Command): void {
  program
    .command('compare')
    .description(COMMAND_DESCRIPTIONS.compare)
    .addHelpText('after', TRAINING_ENVIRONMENT_HELP)
    .requiredOption('-d, --data <dir...>', 'datasets, as name=dir or dir (images/ + masks/0/); a dataset with splits/official_{train,val}<k>.txt uses those splits, others a seeded 70/30 split per k')
    .option('-m, --models <list>', 'models, comma-separated', DEFAULT_MODELS.join(','))
    .option('--splits <list>', 'split numbers k, comma-separated', '1,2,3')
    .option('--schedule <name>', `named schedule: ${Object.entries(COMPARE_SCHEDULES).map(([k, v]) => `${k} (${v.about})`).join('; ')}`, 'cpu-e5-64')
    .option('--epochs <n>', 'override the schedule: epochs', intOption(1))
    .option('-s, --size <pixels>', 'override the schedule: input size (a multiple of 16; 32 with unext)', intOption(16))
    .option('--batch <n>', 'override the schedule: batch size', intOption(2))
    .option('--threads <n>', 'ONNX Runtime threads for training and the CPU latency', intOption(1), 2)
    .option('--seed <n>', 'seed of every run (seeded splits use seed + k - 1)', intOption(0), PAPER_DEFAULTS.seed)
    .option('-o, --out <dir>', 'comparison folder (default runs/compare-<schedule>); run the same command again to resume')
    .option('--latency-size <pixels>', 'input size of the parameter, MAC and latency columns', intOption(16), 256)
    .option('--latency-runs <n>', 'timed runs per latency (median)', intOption(1), 20)
    .option('--browser', 'also measure the latency in headless Chromium (onnxruntime-web, wasm); needs playwright-core and Chromium')
    .option('--chromium <path>', 'Chromium for --browser', DEFAULT_CHROMIUM)
    .option('--skip-unpaired', 'leave out images without masks (and masks without images) with a warning')
    .action(
      action(async (f: CompareFlags) => {
        const named = COMPARE_SCHEDULES[f.schedule];
        if (!named) throw new UserError(`unknown --schedule ${f.schedule}: one of ${Object.keys(COMPARE_SCHEDULES).join(', ')}`);
        const schedule = { epochs: f.epochs ?? named.epochs, size: f.size ?? named.size, batch: f.batch ?? named.batch };
        if (schedule.size % 16 !== 0) throw new UserError(`--size must be a multiple of 16, got ${schedule.size}`);
        if (f.latencySize % 16 !== 0) throw new UserError(`--latency-size must be a multiple of 16, got ${f.latencySize}`);
        const models = list(f.models);
        for (const m of models) if (!MODELS.has(m)) throw new UserError(`unknown model ${m}: one of ${[...MODELS.keys()].join(', ')}`);
        // before any run starts: a size one model cannot take would otherwise stop the comparison at that model's first run
        for (const m of models) {
          const multiple = sizeMultipleOf(MODELS.get(m)!);
          for (const [flag, size] of [['--size', schedule.size], ['--latency-size', f.latencySize]] as const)
            if (size % multiple !== 0) throw new UserError(`${m} needs ${flag} to be a multiple of ${multiple}, got ${size}`);
        }
        const splits = list(f.splits).map((s) => {
          if (!/^\d+$/.test(s) || Number(s) < 1) throw new UserError(`--splits takes numbers >= 1, got ${s}`);
          return Number(s);
        });
        const datasets = f.data.map(parseDataset);
        const out = resolve(f.out ?? join('runs', `compare-${f.schedule}`));
        await ensureOutputDir(out);
        const runs = planRuns(out, datasets, models, splits, f.seed);
        const scheduleText = `${schedule.epochs} epochs at ${schedule.size}x${schedule.size}, batch ${schedule.batch}`;
        const states = runs.map((r) => runState(r.dir, schedule.epochs));
        console.log(`compare: ${models.join(', ')} on ${datasets.map((d) => d.name).join(', ')}, splits ${splits.join(',')}: ${runs.length} runs of ${scheduleText} -> ${out}`);
        console.log(`  ${states.filter((s) => s === 'finished').length} finished, ${states.filter((s) => s === 'interrupted').length} to resume, ${states.filter((s) => s === 'new').length} to start`);
        for (const d of datasets) {
          const s = runs.find((r) => r.dataset === d)!.splitSource;
          console.log(`  ${d.name}: ${s.kind === 'files' ? `published split files (${join(d.dir, 'splits')})` : `seeded 70/30 splits (seed ${f.seed} + k - 1)`}`);
        }

        const controller = new AbortController();
        let stopSignal = 'SIGINT' as NodeJS.Signals;
        const onSignal = (signal: NodeJS.Signals) => {
          if (controller.signal.aborted) process.exit(signal === 'SIGTERM' ? 143 : 130);
          stopSignal = signal;
          console.error('\ninterrupt: finishing the current step and saving a checkpoint (again to quit at once)');
          controller.abort();
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        const outcome = await trainAll(runs, f, schedule, controller.signal).finally(() => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        });
        if (outcome === 'interrupted') {
          process.exitCode = stopSignal === 'SIGTERM' ? 143 : 130;
          return;
        }

        const costs = await measureCosts(models, f);
        const about = `${scheduleText}; IoU and F1 of each run's best-validation-IoU epoch, mean ± sample std over splits ${splits.join(',')}; params and MACs (conv + linear, what the papers call FLOPs) at ${f.latencySize}x${f.latencySize}; latency: batch 1, ${f.latencySize}x${f.latencySize}, ${f.threads} threads, median of ${f.latencyRuns}, CPU = onnxruntime-node${f.browser ? ', browser = onnxruntime-web wasm in headless Chromium' : ''}`;
        const md = await writeReport(out, runs, costs, about);
        console.log(`\n${md}\n${about}\nwritten: ${['table.md', 'table.csv', 'table.html', ...datasets.map((d) => `plot-${d.name}.png`)].map((n) => join(out, n)).join(', ')}`);
      }),
    );
}
