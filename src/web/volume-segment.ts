// Segments a canonical volume slice by slice with the loaded model, preparing each slice as training did
// (volume-slices.ts), and keeps the class index of every voxel: argmax (or logit > 0 for a binary model) at the
// model size, nearest resize (cv2) back to the slice plane.
import { resizeNearestCv2 } from '../data/resize.ts';
import { intensityMap, quantize, type Intensity, type IntensityMap } from '../data/volume/intensity.ts';
import type { VolumeModelMeta } from '../data/volume/model-meta.ts';
import type { SliceAxis } from '../data/volume/slices.ts';
import type { Volume } from '../data/volume/volume.ts';
import type { InferenceBackend } from '../runtime/types.ts';
import type { ModelInfo } from './onnx-info.ts';
import { imageSliceInput, pastePlane, slicePlane, sliceCount, volumeSliceInput } from './volume-slices.ts';
import type { WindowLevel } from './window-level.ts';

/** How slices become network inputs. */
export type InputMode =
  /** A model trained on volumes: its intensity preset, 8 bits, q / 255 · scale + offset; 2·context + 1 channels. */
  | { kind: 'volume'; intensity: Intensity; context: 0 | 1 }
  /** A model trained on 2-D images: the slice in a display window as an 8-bit grey picture. */
  | { kind: 'image'; window: WindowLevel };

export interface ClassTable {
  /** Label value of each class (what the downloaded NIfTI holds). */
  values: number[];
  names: string[];
}

/** Class values and names from the model's metadata, else 0..K-1 named "class k" (K from the model output). */
export function classTable(meta: VolumeModelMeta | undefined, classes: number): ClassTable {
  if (meta) return { values: [...meta.classValues], names: [...meta.classNames] };
  const k = Math.max(2, classes);
  return { values: Array.from({ length: k }, (_, v) => v), names: Array.from({ length: k }, (_, v) => (v === 0 ? 'background' : `class ${v}`)) };
}

/** Why this model cannot take slices prepared this way; undefined when it can. */
export function inputProblem(info: ModelInfo, mode: InputMode, table: ClassTable): string | undefined {
  const classes = Math.max(2, info.classes);
  if (table.values.length !== classes) return `the model's metadata names ${table.values.length} classes but the model outputs ${classes}`;
  if (mode.kind === 'image') return undefined;
  const channels = 2 * mode.context + 1;
  if (info.inChannels !== channels)
    return mode.context === 1
      ? `slice context ±1 gives 3 input channels; the model takes ${info.inChannels}`
      : `the model takes ${info.inChannels} input channels; one slice without context gives 1 (a 3-channel volume model wants slice context ±1, or several image channels the page cannot supply)`;
  return undefined;
}

export class VolumeSegmenter {
  /** Class index per canonical voxel (0 where nothing was segmented yet). */
  readonly labels: Uint8Array;
  /** 1 for each slice along `axis` that has been segmented. */
  readonly done: Uint8Array;
  private readonly codes: Uint8Array;
  private readonly map: IntensityMap;
  inferenceMs = 0;

  constructor(
    private readonly session: InferenceBackend,
    private readonly info: ModelInfo,
    /** The volume in canonical RAS+ layout. */
    private readonly volume: Volume,
    readonly mode: InputMode,
    readonly axis: SliceAxis,
    readonly table: ClassTable,
  ) {
    const problem = inputProblem(info, mode, table);
    if (problem) throw new Error(problem);
    this.map =
      mode.kind === 'volume'
        ? intensityMap(volume.data, mode.intensity)
        : { lo: mode.window.level - mode.window.width / 2, hi: mode.window.level + mode.window.width / 2, scale: 1, offset: 0 };
    this.codes = quantize(volume.data, this.map);
    this.labels = new Uint8Array(volume.data.length);
    this.done = new Uint8Array(sliceCount(volume.dims, axis));
  }

  get slices(): number {
    return this.done.length;
  }

  get complete(): boolean {
    return this.done.every((d) => d === 1);
  }

  /** Segments slice k along the model's axis into `labels`; returns the session.run time (ms). */
  async segmentSlice(k: number): Promise<number> {
    const { size, inChannels, classes, inputName, outputName } = this.info;
    const { dims } = this.volume;
    const input =
      this.mode.kind === 'volume'
        ? volumeSliceInput(this.codes, this.map, dims, this.axis, k, size, this.mode.context)
        : imageSliceInput(this.codes, dims, this.axis, k, size, inChannels);
    const start = performance.now();
    const out = await this.session.run({ [inputName]: { data: input, dims: [1, inChannels, size, size] } }, [outputName]);
    const ms = performance.now() - start;
    const logits = out[outputName]?.data;
    const plane = size * size;
    if (!logits || logits.length !== classes * plane) throw new Error(`the model returned ${logits?.length ?? 0} values, expected ${classes}×${size}×${size}`);
    const mask = new Uint8Array(plane);
    if (classes === 1) for (let i = 0; i < plane; i++) mask[i] = logits[i]! > 0 ? 1 : 0;
    else
      for (let i = 0; i < plane; i++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (logits[c * plane + i]! > logits[best * plane + i]!) best = c;
        mask[i] = best;
      }
    const [w, h] = slicePlane(dims, this.axis);
    pastePlane(this.labels, dims, this.axis, k, resizeNearestCv2(mask, size, size, 1, w, h));
    this.done[k] = 1;
    this.inferenceMs += ms;
    return ms;
  }
}
