#!/usr/bin/env node
import { Command } from 'commander';
import { exitWithParent, needsTrainingAllocator, runWithTrainingAllocator } from './allocator.ts';
import { COMMAND_DESCRIPTIONS, type CommandName } from './descriptions.ts';
import { reportError } from './run.ts';
import { VERSION } from './version.ts';

type Register = (program: Command) => void;

// Each command module pulls in what it needs (ONNX Runtime, sharp, fastify, the volume readers...), which costs
// hundreds of milliseconds; only the module of the command being run is imported.
const LOADERS: Record<CommandName, () => Promise<Register>> = {
  info: async () => (await import('./info.ts')).registerInfo,
  export: async () => (await import('./export.ts')).registerExport,
  split: async () => (await import('./split.ts')).registerSplit,
  check: async () => (await import('./check.ts')).registerCheck,
  train: async () => (await import('./train.ts')).registerTrain,
  eval: async () => (await import('./eval.ts')).registerEval,
  compare: async () => (await import('./compare.ts')).registerCompare,
  predict: async () => (await import('./predict.ts')).registerPredict,
  serve: async () => (await import('./serve.ts')).registerServe,
  queue: async () => (await import('./queue.ts')).registerQueue,
  worker: async () => (await import('./worker.ts')).registerWorker,
};

const isCommand = (name: string | undefined): name is CommandName => name !== undefined && Object.hasOwn(LOADERS, name);

/** The command the arguments name: the first word (no command takes options before its name), or `help <command>`. */
function selectedCommand(args: readonly string[]): CommandName | undefined {
  const words = args.filter((a) => !a.startsWith('-'));
  const name = words[0] === 'help' ? words[1] : words[0];
  return isCommand(name) ? name : undefined;
}

async function main(): Promise<void> {
  const program = new Command('mobileutr')
    .description('MobileUtr medical image segmentation: train, evaluate, predict, export (ONNX Runtime)')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)');
  const selected = selectedCommand(process.argv.slice(2));
  if ((selected === 'train' || selected === 'compare') && needsTrainingAllocator()) await runWithTrainingAllocator();
  exitWithParent();
  for (const name of Object.keys(LOADERS) as CommandName[]) {
    if (name === selected) (await LOADERS[name]())(program);
    else program.command(name).description(COMMAND_DESCRIPTIONS[name]);
  }
  await program.parseAsync(process.argv);
}

main().catch((e) => {
  reportError(e);
  process.exit(1);
});
