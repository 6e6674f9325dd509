import type { Command } from 'commander';
import { graphMacs, layerTable } from '../analysis/complexity.ts';
import { addModelOptions, modelFromFlags, type ModelFlags } from './model-options.ts';
import { action } from './run.ts';
import { COMMAND_DESCRIPTIONS } from './descriptions.ts';

const fmtInt = (n: number) => n.toLocaleString('en-US');
const fmtG = (n: number) => `${(n / 1e9).toFixed(3)} G`;

export function registerInfo(program: Command): void {
  addModelOptions(program.command('info')
      .description(COMMAND_DESCRIPTIONS.info), { weights: true })
    .option('--json', 'print JSON instead of a table')
    .action(
      action(async (flags: ModelFlags & { json?: boolean }) => {
        const model = await modelFromFlags(flags);
        const b = model.graph.builder;
        const macs = graphMacs(b);
        const layers = layerTable(b);
        const o = model.options;
        const summary = {
          model: model.name,
          params: model.parameterCount,
          macs: macs.weights,
          macs_with_attention: macs.weights + macs.attention,
          in_channels: o.inChannels,
          classes: o.classes,
          size: o.size,
          ...(model.definition.lglKernel ? { lgl_kernel: o.lglKernel } : {}),
          input: [1, o.inChannels, o.size, o.size],
          output: [1, o.classes, o.size, o.size],
          tensors: model.entries.length,
          onnx_nodes: b.nodes.length,
          layers,
        };
        if (flags.json) {
          console.log(JSON.stringify(summary, null, 2));
          return;
        }
        const widths = [Math.max(6, ...layers.map((l) => l.module.length)), 16, 12, 10];
        const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
        console.log(`${model.name}: ${model.definition.description}`);
        console.log(`input [N,${o.inChannels},${o.size},${o.size}] -> logits [N,${o.classes},${o.size},${o.size}]${model.definition.lglKernel ? `, LGL kernel ${o.lglKernel}x${o.lglKernel}` : ''}\n`);
        console.log(line(['module', 'output', 'params', 'MACs']));
        for (const l of layers) console.log(line([l.module, l.output.replace('N,', '1,'), fmtInt(l.params), fmtG(l.macs)]));
        console.log();
        console.log(`parameters:                 ${fmtInt(summary.params)}`);
        console.log(`MACs (convs and linears):   ${fmtG(summary.macs)}`);
        console.log(`MACs (with attention):      ${fmtG(summary.macs_with_attention)}`);
      }),
    );
}
