// The paper's BUSI experiment on the three official splits, ours next to an independent PyTorch reference.
//
// For every split: our trainer exactly as a user runs it (`mobileutr train --data ... --split ... --val-split ...`,
// the default protocol, DESIGN.md §4), then bench/torch/train_busi.py, which follows the OFFICIAL main.py
// (its own cv2 decoding and resizing, albumentations semantics, drop_last=False, lr set after each step, ...).
// The two run one after the other, never at the same time, with the same thread count and the same schedule.
// Each side reports the best-validation-IoU epoch of its run (the official checkpoint choice) on the split's
// validation set; the table gives per-split IoU/Dice/F1, mean ± std over the splits, and the mean IoU difference.
// With several --seeds, each side trains every split once per seed (the seed of its initialisation, shuffling and
// augmentation; the two sides' random streams differ anyway) and a split's value is the mean over its seeds.
//
//   npm run repro:busi                                   # the named default schedule (see SCHEDULES), 3 splits
//   npm run repro:busi -- --epochs 1 --size 64 --splits 1 # smoke run
//   npm run repro:busi -- --reuse                         # continue an interrupted comparison in the same folder
//   npm run repro:busi -- --reuse --seeds 41,42,43        # each split with three seeds on each side (less noise)
//
// Results: <out>/results.json and <out>/results.txt; our run folders <out>/ours-s<k>/ (metrics.csv, curves.png,
// best.safetensors), PyTorch's <out>/torch-s<k>.json; logs of both sides beside them.
// The PyTorch side needs Debian's python3-torch, libopenblas0-pthread and python3-opencv (reference only).
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { mean, sampleStd as std } from '../src/util/stats.ts';
import { PYTHON } from './torch-reference.ts';

/** Named schedules. Everything not named here is the default protocol of both sides (batch 8, SGD 0.01 poly, seed 41). */
const SCHEDULES: Record<string, { epochs: number; size: number; about: string }> = {
  // 2 threads on the 2-core machine: ours ~0.63 s per batch-8 step at 128x128 (bench:train, quiet), ~36 s of
  // training per epoch plus ~9 s of validation; PyTorch ~40 s per epoch with validation (README, 40 epochs in 27 min).
  // About 12-15 min per split for us and 13-15 for PyTorch: ~80-90 min in all on a quiet machine, much more on a shared one.
  'cpu-e20-128': { epochs: 20, size: 128, about: 'the default: 20 epochs at 128x128, ~80-90 min for 3 splits x 2 sides on 2 quiet cores' },
  paper: { epochs: 300, size: 256, about: "the paper's schedule (300 epochs at 256x256): days on a CPU" },
};
const DEFAULT_SCHEDULE = 'cpu-e20-128';
const TARGET_POINTS = 1.5;

const o = new Command()
  .description('BUSI, three official splits: our trainer and the PyTorch reference (official protocol), side by side')
  .option('--schedule <name>', `named schedule: ${Object.keys(SCHEDULES).join(', ')}`, DEFAULT_SCHEDULE)
  .option('--epochs <n>', 'override the schedule: epochs')
  .option('--size <n>', 'override the schedule: input size (a multiple of 16)')
  .option('--splits <list>', 'official splits to run, comma-separated', '1,2,3')
  .option('--threads <n>', 'threads of each side (ONNX Runtime intra-op threads; torch.set_num_threads)', '2')
  .option('--seeds <list>', 'seeds, comma-separated: each split runs once per seed on each side, and its value is their mean', '41')
  .option('--only <side>', 'run one side only: ours or torch')
  .option('--out <dir>', 'results folder (default runs/repro-busi-<schedule>, or runs/repro-busi-e<epochs>-<size>)')
  .option('--reuse', 'keep finished runs already in the results folder and continue interrupted ones of ours')
  .option('--data <dir>', 'BUSI in the original layout, with splits/official_{train,val}<k>.txt', fileURLToPath(new URL('../../shared/datasets/busi', import.meta.url)))
  .parse()
  .opts();

const fail = (msg: string): never => {
  console.error(`repro:busi: ${msg}`);
  process.exit(2);
};
const schedule = SCHEDULES[o.schedule] ?? fail(`unknown --schedule ${o.schedule}: one of ${Object.keys(SCHEDULES).join(', ')}`);
const epochs = o.epochs === undefined ? schedule.epochs : Number(o.epochs);
const size = o.size === undefined ? schedule.size : Number(o.size);
const threads = Number(o.threads);
if (!(Number.isInteger(epochs) && epochs >= 1)) fail(`--epochs must be a positive integer, got ${o.epochs}`);
if (!(Number.isInteger(size) && size >= 16 && size % 16 === 0)) fail(`--size must be a positive multiple of 16, got ${o.size}`);
if (!(Number.isInteger(threads) && threads >= 1)) fail(`--threads must be a positive integer, got ${o.threads}`);
const splits = String(o.splits)
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
if (!splits.length || splits.some((s) => !['1', '2', '3'].includes(s))) fail(`--splits must list 1, 2 and/or 3, got ${o.splits}`);
const seeds = String(o.seeds)
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
  .map(Number);
if (!seeds.length || !seeds.every((s) => Number.isInteger(s) && s >= 0) || new Set(seeds).size !== seeds.length) fail(`--seeds must list distinct non-negative integers, got ${o.seeds}`);
/**
 * Split k's run with `seed` on one side: its file name (seed 41, the official one, keeps the names of single-seed
 * runs) and its console prefix.
 */
const runOf = (side: 'ours' | 'torch', k: string, seed: number) => ({
  name: `${side}-s${k}${seed === 41 ? '' : `-seed${seed}`}`,
  tag: `[${side} s${k}${seeds.length > 1 ? ` seed ${seed}` : ''}]`,
});
if (o.only !== undefined && o.only !== 'ours' && o.only !== 'torch') fail(`--only must be ours or torch, got ${o.only}`);
const runOurs = o.only !== 'torch';
const runTorchSide = o.only !== 'ours';
const named = o.epochs === undefined && o.size === undefined;
const label = named ? o.schedule : `e${epochs}-${size}`;
const outDir = resolve(o.out ?? join('runs', `repro-busi-${label}`));
const data = resolve(o.data);
const splitFile = (part: 'train' | 'val', k: string) => join(data, 'splits', `official_${part}${k}.txt`);
for (const k of splits) for (const part of ['train', 'val'] as const) if (!existsSync(splitFile(part, k))) fail(`${splitFile(part, k)} is missing`);
if (runTorchSide && spawnSync(PYTHON, ['-c', 'import torch, cv2'], { stdio: 'ignore' }).status !== 0)
  fail(`${PYTHON} cannot import torch and cv2: apt-get install -y python3-torch libopenblas0-pthread python3-opencv (or pass --only ours)`);
mkdirSync(outDir, { recursive: true });

const CLI = fileURLToPath(new URL('../bin/mobileutr.js', import.meta.url));
const TORCH_SCRIPT = fileURLToPath(new URL('./torch/train_busi.py', import.meta.url));

interface SideResult {
  iou: number;
  dice: number;
  f1: number;
  best_epoch: number | null;
  /** wall time of the whole child process (start-up, data, training, validation) */
  wall_s: number;
  /** training time per epoch (mean), validation excluded */
  train_s_per_epoch: number;
  /** wall time per epoch including validation, start-up spread over the epochs */
  wall_s_per_epoch: number;
  reused?: boolean;
}

/** Runs a child to completion, copying stdout lines (prefixed) to the console, everything to `logFile`. */
function runChild(cmd: string, args: string[], logFile: string, prefix: string, o2: { env?: NodeJS.ProcessEnv; echoStderr: boolean }): Promise<{ code: number; seconds: number; tail: string[] }> {
  return new Promise((done) => {
    const started = performance.now();
    const log = createWriteStream(logFile, { flags: 'a' });
    log.write(`$ ${cmd} ${args.join(' ')}\n`);
    const child = spawn(cmd, args, { env: o2.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const lines = (echo: boolean) => {
      let rest = '';
      return (chunk: Buffer) => {
        log.write(chunk);
        rest += chunk.toString('utf8');
        const parts = rest.split(/\r?\n|\r/);
        rest = parts.pop()!;
        for (const line of parts) {
          if (!line.trim()) continue;
          tail.push(line);
          if (tail.length > 20) tail.shift();
          if (echo && !line.startsWith('{')) console.log(`${prefix} ${line}`);
        }
      };
    };
    child.stdout.on('data', lines(true));
    child.stderr.on('data', lines(o2.echoStderr));
    // Ctrl-C reaches the child from the terminal (our trainer then saves a checkpoint): wait for it to finish;
    // a SIGTERM to this process alone is passed on as an interrupt
    const onInt = () => undefined;
    const onTerm = () => child.kill('SIGINT');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    child.on('close', (code, signal) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      log.end();
      done({ code: code ?? (signal ? 130 : 1), seconds: (performance.now() - started) / 1000, tail });
    });
  });
}

interface OurRecord {
  epoch: number;
  val_iou: number | null;
  val_dice: number | null;
  val_f1: number | null;
  seconds: number;
}

const readRecords = (runDir: string): OurRecord[] =>
  existsSync(join(runDir, 'metrics.jsonl'))
    ? readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as OurRecord)
    : [];

async function ours(k: string, seed: number): Promise<SideResult> {
  const { name, tag } = runOf('ours', k, seed);
  const runDir = join(outDir, name);
  const wallFile = join(outDir, `${name}.wall.json`);
  const exists = existsSync(join(runDir, 'config.json'));
  let records = readRecords(runDir);
  let reused = false;
  if (exists && !o.reuse) fail(`${runDir} already holds a run: pass --reuse to keep it (and continue it if unfinished), or another --out`);
  if (exists) {
    const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
    if (config.epochs !== epochs || config.size !== size || config.threads !== threads || config.seed !== seed)
      fail(`${runDir} was started with ${config.epochs} epochs at ${config.size}x${config.size}, ${config.threads} threads, seed ${config.seed}: not this schedule; use another --out`);
  }
  if (exists && records.length >= epochs) {
    reused = true;
    console.log(`${tag} reusing the finished run in ${runDir}`);
  } else {
    const args = exists
      ? [CLI, 'train', '--resume', runDir]
      : [CLI, 'train', '--data', data, '--split', splitFile('train', k), '--val-split', splitFile('val', k), '--epochs', String(epochs), '--size', String(size), '--threads', String(threads), '--seed', String(seed), '--out', runDir];
    console.log(`${tag} mobileutr train ${args.slice(2).join(' ')}`);
    const previous = existsSync(wallFile) ? JSON.parse(readFileSync(wallFile, 'utf8')).wall_s : 0;
    const r = await runChild(process.execPath, args, join(outDir, `${name}.log`), tag, { echoStderr: false });
    writeFileSync(wallFile, JSON.stringify({ wall_s: previous + r.seconds }));
    if (r.code !== 0) fail(`our trainer failed on split ${k}, seed ${seed} (exit ${r.code}); last lines:\n${r.tail.join('\n')}\n(full log: ${join(outDir, `${name}.log`)}; --reuse continues the run)`);
    records = readRecords(runDir);
  }
  const validated = records.filter((r) => r.val_iou !== null);
  if (!validated.length) fail(`${runDir}/metrics.jsonl has no validated epoch`);
  // the first epoch with the highest mean validation IoU: the checkpoint the trainer kept as best.safetensors
  const best = validated.reduce((b, r) => (r.val_iou! > b.val_iou! ? r : b));
  const wall = existsSync(wallFile) ? JSON.parse(readFileSync(wallFile, 'utf8')).wall_s : NaN;
  return {
    iou: best.val_iou!,
    dice: best.val_dice!,
    f1: best.val_f1!,
    best_epoch: best.epoch,
    wall_s: wall,
    train_s_per_epoch: records.reduce((t, r) => t + r.seconds, 0) / records.length,
    wall_s_per_epoch: wall / records.length,
    reused,
  };
}

/** What bench/torch/train_busi.py prints (the fields used here), plus the child's wall time. */
interface TorchJson {
  best_iou: number;
  best_dice: number;
  best_f1: number;
  best_epoch: number | null;
  epochs: number;
  size: number;
  threads: number;
  seed: number;
  seconds: number;
  train_seconds: number;
  val_seconds: number;
  process_wall_s?: number;
}

async function runTorchReference(k: string, seed: number): Promise<TorchJson> {
  const { name, tag } = runOf('torch', k, seed);
  const file = join(outDir, `${name}.json`);
  if (existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as TorchJson;
    if (!o.reuse) fail(`${file} exists: pass --reuse to keep it, or another --out`);
    if (saved.epochs !== epochs || saved.size !== size || saved.threads !== threads || saved.seed !== seed)
      fail(`${file} is from another schedule (${saved.epochs} epochs at ${saved.size}, ${saved.threads} threads, seed ${saved.seed}); use another --out`);
    console.log(`${tag} reusing ${file}`);
    return saved;
  }
  const args = [TORCH_SCRIPT, '--dataset', data, '--train-split', splitFile('train', k), '--val-split', splitFile('val', k), '--size', String(size), '--epochs', String(epochs), '--threads', String(threads), '--seed', String(seed), '--out', file];
  console.log(`${tag} train_busi.py ${args.slice(1).join(' ')}`);
  // libgomp's spinning waiters starve each other on a small shared machine (bench/torch/README.md)
  const env = { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE', OPENBLAS_NUM_THREADS: process.env.OPENBLAS_NUM_THREADS ?? '1' };
  const r = await runChild(PYTHON, args, join(outDir, `${name}.log`), tag, { env, echoStderr: true });
  if (r.code !== 0 || !existsSync(file)) fail(`the PyTorch reference failed on split ${k}, seed ${seed} (exit ${r.code}); last lines:\n${r.tail.join('\n')}`);
  const result: TorchJson = { ...(JSON.parse(readFileSync(file, 'utf8')) as TorchJson), process_wall_s: r.seconds };
  writeFileSync(file, `${JSON.stringify(result)}\n`);
  return result;
}

async function torch(k: string, seed: number): Promise<SideResult> {
  const result = await runTorchReference(k, seed);
  const wall = result.process_wall_s ?? result.seconds;
  return {
    iou: result.best_iou,
    dice: result.best_dice,
    f1: result.best_f1,
    best_epoch: result.best_epoch,
    wall_s: wall,
    train_s_per_epoch: result.train_seconds / result.epochs,
    wall_s_per_epoch: wall / result.epochs,
  };
}

const pts = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : (x * 100).toFixed(2));
const pm = (xs: number[]) => (xs.length ? `${pts(mean(xs))} ± ${pts(std(xs))}` : '-');
const minutes = (s: number | undefined) => (s === undefined || !Number.isFinite(s) ? '-' : `${(s / 60).toFixed(1)} min`);

console.log(
  `BUSI official split(s) ${splits.join(', ')}: schedule ${named ? `${o.schedule} (${schedule.about})` : `custom`}: ${epochs} epochs at ${size}x${size}, batch 8, SGD 0.01 poly, seed(s) ${seeds.join(', ')}; ${threads} threads each side; ${[runOurs && 'ours', runTorchSide && 'PyTorch (official protocol)'].filter(Boolean).join(' then ')}, one after the other -> ${outDir}`,
);
const started = performance.now();
/** One split: each side's runs (one per seed) and their mean. */
interface SplitRow {
  split: string;
  ours?: SideResult;
  torch?: SideResult;
  runs: { seed: number; ours?: SideResult; torch?: SideResult }[];
}
/** The mean over seeds of the scores and per-epoch times; wall time summed; best_epoch kept for a single seed. */
const overSeeds = (rs: SideResult[]): SideResult =>
  rs.length === 1
    ? rs[0]!
    : {
        iou: mean(rs.map((r) => r.iou)),
        dice: mean(rs.map((r) => r.dice)),
        f1: mean(rs.map((r) => r.f1)),
        best_epoch: null,
        wall_s: rs.reduce((t, r) => t + r.wall_s, 0),
        train_s_per_epoch: mean(rs.map((r) => r.train_s_per_epoch)),
        wall_s_per_epoch: mean(rs.map((r) => r.wall_s_per_epoch)),
        reused: rs.every((r) => r.reused),
      };
const perSplit: SplitRow[] = [];
for (const k of splits) {
  const row: SplitRow = { split: k, runs: [] };
  for (const seed of seeds) {
    const run: SplitRow['runs'][number] = { seed };
    if (runOurs) run.ours = await ours(k, seed);
    if (runTorchSide) run.torch = await torch(k, seed);
    row.runs.push(run);
  }
  if (runOurs) row.ours = overSeeds(row.runs.map((r) => r.ours!));
  if (runTorchSide) row.torch = overSeeds(row.runs.map((r) => r.torch!));
  perSplit.push(row);
  console.log(`split ${k}: ours IoU ${pts(row.ours?.iou)}  PyTorch IoU ${pts(row.torch?.iou)}  (${minutes((performance.now() - started) / 1000)} so far)`);
}

const sideSummary = (side: 'ours' | 'torch') => {
  const rows = perSplit.map((r) => r[side]).filter((r): r is SideResult => r !== undefined);
  if (!rows.length) return undefined;
  const of = (f: (r: SideResult) => number) => rows.map(f);
  return {
    iou_mean: mean(of((r) => r.iou)),
    iou_std: std(of((r) => r.iou)),
    dice_mean: mean(of((r) => r.dice)),
    dice_std: std(of((r) => r.dice)),
    f1_mean: mean(of((r) => r.f1)),
    f1_std: std(of((r) => r.f1)),
    wall_s: rows.reduce((t, r) => t + r.wall_s, 0),
    train_s_per_epoch: mean(of((r) => r.train_s_per_epoch)),
    wall_s_per_epoch: mean(of((r) => r.wall_s_per_epoch)),
  };
};
const summary = { ours: sideSummary('ours'), torch: sideSummary('torch') };
const diff = summary.ours && summary.torch ? (summary.ours.iou_mean - summary.torch.iou_mean) * 100 : undefined;

const table: string[] = [];
const cols = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(12) : c.padStart(16))).join('  ');
table.push(`BUSI, official split(s) ${splits.join(', ')}; ${epochs} epochs at ${size}x${size}${named ? ` (schedule ${o.schedule})` : ''}; batch 8, SGD 0.01 poly, ${seeds.length > 1 ? `seeds ${seeds.join(', ')}` : `seed ${seeds[0]}`}; ${threads} threads each side`);
table.push(`best-validation-IoU epoch of each run, scored on the split's validation set at ${size}x${size}; ${seeds.length > 1 ? "a split's value is the mean over its seeds; " : ''}mean ± sample std over splits`);
table.push('');
table.push(cols(['split', 'ours IoU', 'PyTorch IoU', 'ours Dice', 'PyTorch Dice', 'ours F1', 'PyTorch F1', 'best ep. o/t', 'wall o/t']));
/** A table row of both sides' results: one seed's runs, or a split (its best epochs listed, one per seed). */
const resultRow = (label: string, both: { ours?: SideResult; torch?: SideResult }, bestEpochs: { ours: string; torch: string }) =>
  cols([
    label,
    pts(both.ours?.iou),
    pts(both.torch?.iou),
    pts(both.ours?.dice),
    pts(both.torch?.dice),
    pts(both.ours?.f1),
    pts(both.torch?.f1),
    `${bestEpochs.ours} / ${bestEpochs.torch}`,
    `${minutes(both.ours?.wall_s)} / ${minutes(both.torch?.wall_s)}`.replace(/ min \//, ' /'),
  ]);
const epochsOf = (runs: SplitRow['runs'], side: 'ours' | 'torch') => runs.map((x) => x[side]?.best_epoch ?? '-').join(',');
for (const r of perSplit) {
  if (seeds.length > 1) for (const x of r.runs) table.push(resultRow(`${r.split} seed ${x.seed}`, x, { ours: epochsOf([x], 'ours'), torch: epochsOf([x], 'torch') }));
  table.push(resultRow(seeds.length > 1 ? `${r.split} (mean)` : r.split, r, { ours: epochsOf(r.runs, 'ours'), torch: epochsOf(r.runs, 'torch') }));
}
const listOf = (side: 'ours' | 'torch', f: (r: SideResult) => number) => perSplit.flatMap((r) => (r[side] ? [f(r[side]!)] : []));
table.push(
  cols([
    'mean ± std',
    pm(listOf('ours', (r) => r.iou)),
    pm(listOf('torch', (r) => r.iou)),
    pm(listOf('ours', (r) => r.dice)),
    pm(listOf('torch', (r) => r.dice)),
    pm(listOf('ours', (r) => r.f1)),
    pm(listOf('torch', (r) => r.f1)),
    '',
    `${minutes(summary.ours?.wall_s)} / ${minutes(summary.torch?.wall_s)}`.replace(/ min \//, ' /'),
  ]),
);
table.push('');
const perEpoch = (s: ReturnType<typeof sideSummary>) => (s ? `${s.train_s_per_epoch.toFixed(1)} s training, ${s.wall_s_per_epoch.toFixed(1)} s with validation and start-up` : '-');
table.push(`per epoch: ours ${perEpoch(summary.ours)}; PyTorch ${perEpoch(summary.torch)}`);
if (diff !== undefined)
  table.push(`mean IoU difference (ours - PyTorch): ${diff >= 0 ? '+' : ''}${diff.toFixed(2)} points; target within ${TARGET_POINTS}: ${Math.abs(diff) <= TARGET_POINTS ? 'met' : 'NOT met'}${named ? '' : ' (custom schedule: indicative only)'}`);
const text = `${table.join('\n')}\n`;

const results = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
  schedule: named ? o.schedule : 'custom',
  epochs,
  size,
  batch: 8,
  threads,
  seeds,
  splits: perSplit,
  summary,
  iou_difference_points: diff ?? null,
  target_points: TARGET_POINTS,
  target_met: diff === undefined ? null : Math.abs(diff) <= TARGET_POINTS,
  wall_s: (performance.now() - started) / 1000,
};
writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(outDir, 'results.txt'), text);
console.log(`\n${text}\nwritten: ${join(outDir, 'results.json')}, ${join(outDir, 'results.txt')}`);
