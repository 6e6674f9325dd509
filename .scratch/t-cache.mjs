import * as ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
const bytes = readFileSync('/tmp/g16.onnx');
for (const lvl of ['all','extended','basic']) {
let t = performance.now();
let s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: lvl, intraOpNumThreads: 2, optimizedModelFilePath: `/tmp/g16-opt-${lvl}.onnx` , logSeverityLevel: 3});
console.log(lvl, 'create+save', (performance.now()-t).toFixed(0));
await s.release();
t = performance.now();
s = await ort.InferenceSession.create(`/tmp/g16-opt-${lvl}.onnx`, { graphOptimizationLevel: 'disabled', intraOpNumThreads: 2, logSeverityLevel: 3 });
console.log(lvl, 'load optimized, disabled', (performance.now()-t).toFixed(0));
await s.release();
}
