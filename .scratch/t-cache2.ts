import { readFileSync } from 'node:fs';
import { NodeSession } from '../src/runtime/session.ts';
const bytes = new Uint8Array(readFileSync('/tmp/g16.onnx'));
process.env.MOBILEUTR_CACHE_DIR = '/tmp/mu-cache-test';
const s0 = await NodeSession.create(bytes, { threads: 2, memoryPattern: false });
const feeds: Record<string, {data: Float32Array, dims: number[]}> = {};
// fill feeds from input names: we need shapes; use the model's graph inputs via onnx-proto
import onnxProto from 'onnx-proto';
const m = onnxProto.onnx.ModelProto.decode(bytes);
let k = 0;
for (const i of m.graph!.input!) {
  const dims = i.type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue));
  const n = dims.reduce((a, b) => a * b, 1);
  feeds[i.name!] = { data: Float32Array.from({ length: n }, (_, j) => i.name === 'optim.lr' ? 0.01 : Math.sin(++k * 0.37 + j) * 0.5 + (i.name!.includes('target') ? 0.5 : 0)), dims };
}
const ref = await s0.run(feeds);
for (const round of ['miss', 'hit']) {
  const t = performance.now();
  const s = await NodeSession.create(bytes, { threads: 2, memoryPattern: false, compileCache: true });
  const ms = performance.now() - t;
  const out = await s.run(feeds);
  let diff = 0;
  for (const [name, v] of Object.entries(ref)) for (let i = 0; i < v.data.length; i++) if (!Object.is(v.data[i], out[name]!.data[i])) diff++;
  console.log(round, ms.toFixed(0), 'ms; differing elements', diff, 'of outputs', Object.keys(ref).length);
}
