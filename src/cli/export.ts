import { rename, rm, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { volumeMetaFrom, volumeMetadata } from '../data/volume/model-meta.ts';
import { UserError } from '../errors.ts';
import { readSafetensorsFile } from '../io/safetensors.ts';
import { OPSET } from '../ir/onnx.ts';
import { NodeSession } from '../runtime/session.ts';
import { addModelOptions, modelFromFlags, type ModelFlags } from './model-options.ts';
import { action, fsProblem } from './run.ts';

export function registerExport(program: Command): void {
  addModelOptions(program.command('export').description('write the inference graph as a standard .onnx file'), { weights: true })
    .requiredOption('-o, --out <file>', 'output .onnx file')
    .action(
      action(async (flags: ModelFlags & { out: string }) => {
        const model = await modelFromFlags(flags);
        // a volume model keeps what it needs to segment volumes (intensity, axis, classes) in the ONNX metadata_props
        const volume = flags.weights ? volumeMetaFrom((await readSafetensorsFile(flags.weights)).metadata, flags.weights) : undefined;
        const bytes = model.toOnnx({ metadata: volume ? volumeMetadata(volume) : {} });
        // the file must load in ONNX Runtime before we call it written
        const session = await NodeSession.create(bytes).catch((e: Error) => {
          throw new Error(`exported graph does not load in ONNX Runtime: ${e.message}`);
        });
        await session.release();
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
