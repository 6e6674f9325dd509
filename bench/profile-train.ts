// Where a training step's time goes: ORT's profiler on the training graph, summed by op type and by module
// (backward nodes are named grad.<module>.<op>), with the slowest nodes.
//   npx tsx bench/profile-train.ts [--model mobileutr] [--size 256] [--batch 8] [--threads 1] [--runs 3] [--top 25] [--module layer1]
// Tooling, not library code: it talks to onnxruntime-node directly because NodeSession has no profiling switch.
import { readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { buildTrainingGraph } from '../src/autodiff/training-graph.ts';
import { createModel } from '../src/models/model.ts';
import { sgd } from '../src/optim/optimizers.ts';
import { Rng } from '../src/util/rng.ts';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'mobileutr' },
    size: { type: 'string', default: '256' },
    batch: { type: 'string', default: '8' },
    threads: { type: 'string', default: '1' },
    runs: { type: 'string', default: '3' },
    top: { type: 'string', default: '25' },
    module: { type: 'string' },
  },
});
const [size, batch, threads] = [Number(a.size), Number(a.batch), Number(a.threads)];
const model = createModel(a.model!, { size });
const graph = buildTrainingGraph(model, { batch, optimizer: sgd({ momentum: 0.9, weightDecay: 1e-4 }) });
const prefix = join(tmpdir(), `mobileutr-profile-${process.pid}`);
const session = await ort.InferenceSession.create(graph.onnx, {
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  enableMemPattern: false,
  enableProfiling: true,
  profileFilePrefix: prefix,
  extra: { session: { intra_op: { allow_spinning: '0' } } },
});
const rng = new Rng(1);
const tensor = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);
const zeros = (shape: number[]) => new Float32Array(shape.reduce((p, d) => p * d, 1));
const feeds: Record<string, ort.Tensor> = {
  [graph.image]: tensor(Float32Array.from({ length: batch * model.options.inChannels * size * size }, () => rng.normal()), [batch, model.options.inChannels, size, size]),
  [graph.target]: tensor(Float32Array.from({ length: batch * model.options.classes * size * size }, () => (rng.next() > 0.5 ? 1 : 0)), [batch, model.options.classes, size, size]),
};
for (const p of [...graph.params, ...graph.buffers]) feeds[p.input] = tensor(model.weights.get(p.input)!, p.shape);
for (const s of graph.state) feeds[s.input] = tensor(zeros(s.shape), s.shape);
for (const r of graph.randomInputs) feeds[r.input] = tensor(zeros(r.shape).fill(1), r.shape);
for (const s of graph.scalars) feeds[s] = tensor(Float32Array.of(0.01), []);
console.log(`${a.model} batch ${batch} ${size}x${size}, ${threads} thread(s), ${graph.nodeCount} nodes`);
for (let i = 0; i < Number(a.runs); i++) {
  const t0 = performance.now();
  await session.run(feeds);
  console.log(`run ${i + 1}: ${(performance.now() - t0).toFixed(0)} ms`);
}
session.endProfiling();
await session.release();
const written = readdirSync(tmpdir()).filter((f) => f.startsWith(`mobileutr-profile-${process.pid}`)).sort();
if (written.length === 0) throw new Error(`no profile written under ${prefix}*`);
const path = join(tmpdir(), written[written.length - 1]!);
interface ProfileEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args: { op_name?: string; output_type_shape?: unknown };
}
const events = JSON.parse(readFileSync(path, 'utf8')) as ProfileEvent[];
unlinkSync(path);
const lastRun = Math.max(...events.filter((e) => e.name === 'model_run').map((e) => e.ts));
const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.ts >= lastRun);
const ms = (us: number) => (us / 1000).toFixed(1).padStart(8);
const sum = (key: (e: ProfileEvent) => string) => {
  const m = new Map<string, number>();
  for (const e of nodes) m.set(key(e), (m.get(key(e)) ?? 0) + e.dur);
  return [...m].sort((p, q) => q[1] - p[1]);
};
const total = nodes.reduce((t, e) => t + e.dur, 0);
console.log(`\nlast run, kernels: ${ms(total)} ms`);
console.log('\nby op type');
for (const [k, v] of sum((e) => e.args.op_name ?? '?').slice(0, Number(a.top))) console.log(`${ms(v)} ms ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
console.log('\nby module (f: forward, b: backward)');
const moduleOf = (e: ProfileEvent) => `${e.name.startsWith('grad.') ? 'b' : 'f'}: ${e.name.replace(/^grad\./, '').split('.').slice(0, 2).join('.')}`;
for (const [k, v] of sum(moduleOf).slice(0, Number(a.top))) console.log(`${ms(v)} ms  ${k}`);
const selected = a.module ? nodes.filter((e) => e.name.includes(a.module!)) : nodes;
console.log(`\nslowest nodes${a.module ? ` in ${a.module}` : ''}`);
for (const e of [...selected].sort((p, q) => q.dur - p.dur).slice(0, Number(a.top)))
  console.log(`${ms(e.dur)} ms  ${(e.args.op_name ?? '').padEnd(18)} ${e.name.replace('_kernel_time', '')} ${JSON.stringify(e.args.output_type_shape ?? '').slice(0, 60)}`);
