import { rename, rm, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { volumeMetaFrom } from '../data/volume/model-meta.ts';
import { exportOnnx } from '../pipeline/export.ts';
import { UserError } from '../errors.ts';
import { readSafetensorsFile } from '../io/safetensors.ts';
import { OPSET } from '../ir/onnx.ts';
import { addModelOptions, modelFromFlags, type ModelFlags } from './model-options.ts';
import { action, fsProblem } from './run.ts';
import { COMMAND_DESCRIPTIONS } from './descriptions.ts';

export function registerExport(program: Command): void {
  addModelOptions(program.command('export')
      .description(COMMAND_DESCRIPTIONS.export), { weights: true })
    .requiredOption('-o, --out <file>', 'output .onnx file')
    .action(
      action(async (flags: ModelFlags & { out: string }) => {
        const model = await modelFromFlags(flags);
        // a volume model keeps what it needs to segment volumes (intensity, axis, classes) in the ONNX metadata_props
        const volume = flags.weights ? volumeMetaFrom((await readSafetensorsFile(flags.weights)).metadata, flags.weights) : undefined;
        const bytes = await exportOnnx(model, { volume });
        const tmp = `${flags.out}.tmp-${process.pid}`;
        try {
          await writeFile(tmp, bytes);
          await rename(tmp, flags.out);
        } catch (e) {
          await rm(tmp, { force: true }).catch(() => {});
          throw new UserError(`${flags.out}: cannot write (${fsProblem(e)})`);
        }
        const o = model.options;
        console.log(
          `wrote ${flags.out} (${(bytes.length / 1e6).toFixed(2)} MB, opset ${OPSET}): ${model.name}, input "input" [N,${o.inChannels},${o.size},${o.size}] float32, output "logits" [N,${o.classes},${o.size},${o.size}]${flags.weights ? `, weights from ${flags.weights}` : ', default-initialised weights (seed 0)'}${volume ? `; volume model (${volume.intensity.kind}, ${volume.axis}, classes ${volume.classNames.join(', ')}) in metadata "volume"` : ''}`,
        );
      }),
    );
}
