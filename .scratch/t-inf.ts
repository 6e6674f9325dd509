import { createModel } from '../src/models/model.ts';
import { NodeSession } from '../src/runtime/session.ts';
for (const size of [64, 256]) {
const model = createModel('mobileutr', { size, classes: 1 });
const bytes = model.toOnnx();
for (const opt of ['all', 'disabled'] as const) {
  const t = performance.now();
  const s = await NodeSession.create(bytes, { optimization: opt });
  console.log(size, 'inference session', opt, (performance.now() - t).toFixed(0), 'ms', bytes.length);
  await s.release();
}}
