import { writeFileSync } from 'node:fs';
import { createModel } from '../src/models/model.ts';
import { buildTrainingGraph } from '../src/autodiff/training-graph.ts';
import { sgd } from '../src/optim/optimizers.ts';
const model = createModel('mobileutr', { size: 16, classes: 1 });
writeFileSync('/tmp/g16.onnx', buildTrainingGraph(model, { batch: 2, optimizer: sgd({momentum:0.9, weightDecay:1e-4}) }).onnx);
