// Reads ONNX Runtime profiles (Chrome trace JSON) and summarises kernel time per op type and per node.
// Per node the fastest of the profiled runs is used (interference only adds time), so one disturbed run on a shared machine does not dominate.
import { readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

interface ProfileEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args: { op_name?: string; output_type_shape?: unknown };
}

export interface NodeTime {
  node: string;
  opType: string;
  ms: number;
  shape: string;
}

export interface ProfileSummary {
  runs: number;
  totalMs: number;
  /** Median over the kept runs of ORT's model_run duration, and of the kernel time summed within each run. */
  runMs: number;
  runKernelMs: number;
  byOpType: [string, number][];
  nodes: NodeTime[];
}

const fastest = (xs: number[]) => Math.min(...xs);

/** Reads and deletes the newest profile file written under `prefix`; skips the first `skipRuns` model runs. */
export function readProfile(prefix: string, skipRuns = 1): ProfileSummary {
  const dir = dirname(prefix);
  const files = readdirSync(dir).filter((f) => f.startsWith(basename(prefix))).sort();
  if (files.length === 0) throw new Error(`no ONNX Runtime profile under ${prefix}*`);
  const path = join(dir, files[files.length - 1]!);
  const events = JSON.parse(readFileSync(path, 'utf8')) as ProfileEvent[];
  for (const f of files) unlinkSync(join(dir, f));
  const modelRuns = events.filter((e) => e.name === 'model_run').sort((p, q) => p.ts - q.ts);
  const runs = modelRuns.slice(Math.min(skipRuns, modelRuns.length - 1));
  const kernelEvents = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.ts >= runs[0]!.ts);
  const perNode = new Map<string, { opType: string; shape: string; durs: number[] }>();
  for (const e of kernelEvents) {
    const node = e.name.slice(0, -'_kernel_time'.length);
    const entry = perNode.get(node) ?? { opType: e.args.op_name ?? '?', shape: JSON.stringify(e.args.output_type_shape ?? '').slice(0, 70), durs: [] };
    entry.durs.push(e.dur / 1000);
    perNode.set(node, entry);
  }
  const median = (xs: number[]) => xs.sort((p, q) => p - q)[Math.floor(xs.length / 2)] ?? 0;
  const runKernel = runs.map((r) => kernelEvents.filter((e) => e.ts >= r.ts && e.ts < r.ts + r.dur).reduce((t, e) => t + e.dur / 1000, 0));
  const nodes = [...perNode].map(([node, v]) => ({ node, opType: v.opType, shape: v.shape, ms: fastest(v.durs) }));
  const byType = new Map<string, number>();
  for (const n of nodes) byType.set(n.opType, (byType.get(n.opType) ?? 0) + n.ms);
  return {
    runs: runs.length,
    runMs: median(runs.map((r) => r.dur / 1000)),
    runKernelMs: median(runKernel),
    totalMs: nodes.reduce((t, n) => t + n.ms, 0),
    byOpType: [...byType].sort((p, q) => q[1] - p[1]),
    nodes: nodes.sort((p, q) => q.ms - p.ms),
  };
}

/** Backward nodes are named grad.<module>.<op>, optimizer nodes optim.*: the part of the step a node belongs to. */
export const phaseOf = (node: string): 'backward' | 'optimizer' | 'forward' =>
  node.startsWith('grad.') ? 'backward' : node.startsWith('optim.') ? 'optimizer' : 'forward';

export function printProfile(title: string, p: ProfileSummary, top: number): void {
  const f = (ms: number) => ms.toFixed(1).padStart(8);
  console.log(`\n== ${title}: ${f(p.totalMs)} ms of kernels (fastest per node of ${p.runs} runs)`);
  const phases = new Map<string, number>();
  for (const n of p.nodes) phases.set(phaseOf(n.node), (phases.get(phaseOf(n.node)) ?? 0) + n.ms);
  console.log(`   per run (median): ${p.runMs.toFixed(0)} ms in ONNX Runtime's model_run, ${p.runKernelMs.toFixed(0)} ms of it in kernels`);
  console.log(`   by phase: ${[...phases].map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', ')}`);
  console.log('   by op type:');
  for (const [k, v] of p.byOpType.slice(0, top)) console.log(`   ${f(v)} ms ${((100 * v) / p.totalMs).toFixed(1).padStart(5)}%  ${k}`);
  if (phases.size > 1) {
    const byPhaseType = new Map<string, number>();
    for (const n of p.nodes) byPhaseType.set(`${phaseOf(n.node)} ${n.opType}`, (byPhaseType.get(`${phaseOf(n.node)} ${n.opType}`) ?? 0) + n.ms);
    console.log('   by phase and op type:');
    for (const [k, v] of [...byPhaseType].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`   ${f(v)} ms  ${k}`);
  }
  console.log(`   top ${top} nodes:`);
  for (const n of p.nodes.slice(0, top)) console.log(`   ${f(n.ms)} ms  ${n.opType.padEnd(18)} ${n.node} ${n.shape}`);
}
