import { createModel } from '../src/models/model.ts';
import { createTrainer } from '../src/train/trainer.ts';
import { buildTrainingGraph } from '../src/autodiff/training-graph.ts';
import { NodeSession } from '../src/runtime/session.ts';
import { sgd } from '../src/optim/optimizers.ts';
const model = createModel('mobileutr', { size: 16, classes: 1 });
let t = performance.now();
const g = buildTrainingGraph(model, { batch: 2, optimizer: sgd({momentum:0.9, weightDecay:1e-4}) });
console.log('build', (performance.now() - t).toFixed(0), 'ms, bytes', g.onnx.length);
for (const opt of ['all', 'extended', 'basic', 'disabled'] as const) {
  t = performance.now();
  const s = await NodeSession.create(g.onnx, { optimization: opt, threads: 2 });
  console.log('session', opt, (performance.now() - t).toFixed(0), 'ms');
  await s.release();
}
const trainer = createTrainer(model, {});
const images = { data: new Float32Array(2*3*256).fill(0.1), dims: [2,3,16,16] };
const targets = { data: new Float32Array(2*256).fill(1), dims: [2,1,16,16] };
for (let i = 0; i < 3; i++) { t = performance.now(); await trainer.step(images, targets, 0.01); console.log('step', i, (performance.now() - t).toFixed(0)); }
