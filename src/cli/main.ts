import { Command } from 'commander';
import { registerCheck } from './check.ts';
import { registerEval } from './eval.ts';
import { registerExport } from './export.ts';
import { registerInfo } from './info.ts';
import { registerPredict } from './predict.ts';
import { registerServe } from './serve.ts';
import { registerSplit } from './split.ts';
import { registerTrain } from './train.ts';
import { reportError } from './run.ts';

const program = new Command('mobileutr')
  .description('MobileUtr medical image segmentation: train, evaluate, predict, export (ONNX Runtime)')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');

registerInfo(program);
registerExport(program);
registerSplit(program);
registerCheck(program);
registerTrain(program);
registerEval(program);
registerPredict(program);
registerServe(program);

program.parseAsync(process.argv).catch((e) => {
  reportError(e);
  process.exit(1);
});
