// Weights that ship with the package, by name: `--weights busi`, `train --init busi`, loadModel({ weights: 'busi' }).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface PretrainedWeights {
  name: string;
  model: string;
  /** File name under pretrained/ (safetensors; the .onnx beside it has the same stem). */
  file: string;
  dataset: string;
  citation: string;
  licence: string;
}

/** The package's pretrained/ folder (the same relative place from src/ and from the compiled dist/). */
export const PRETRAINED_DIR = fileURLToPath(new URL('../../pretrained/', import.meta.url));

export const PRETRAINED: ReadonlyMap<string, PretrainedWeights> = new Map(
  [
    {
      name: 'busi',
      model: 'mobileutr',
      file: 'mobileutr-busi.safetensors',
      dataset: 'BUSI (Breast Ultrasound Images Dataset), benign + malignant, official split 1',
      citation: 'W. Al-Dhabyani, M. Gomaa, H. Khaled, A. Fahmy, "Dataset of breast ultrasound images", Data in Brief 28 (2020) 104863, doi:10.1016/j.dib.2019.104863',
      licence: 'The dataset states no licence; its data article is open access. Cite it; research use. The weights are derived from it and carry the same terms.',
    },
  ].map((p) => [p.name, p]),
);

/**
 * The file a `--weights` value names: a pretrained name (busi) gives the bundled file, unless a file of that name
 * exists here; anything else is returned as it is.
 */
export function weightsPath(spec: string): string {
  const entry = PRETRAINED.get(spec);
  return entry && !existsSync(spec) ? `${PRETRAINED_DIR}${entry.file}` : spec;
}
