// The LGL block's local kernel: the depthwise kernel of LocalAgg (pos_embed and attn), 9×9 in the official code.
// The 2023 paper makes it adaptive: K follows the dataset's mean target diameter, K = D̄/16 on the stride-8
// bottleneck. Pure functions (no file system), shared by the CLI and the browser.
import { UserError } from '../../errors.ts';

/** The official code's kernel. */
export const LGL_KERNEL_DEFAULT = 9;
/** Explicit kernels: odd, 3..31 (31 covers the whole stride-8 bottleneck of a 256 input). */
export const LGL_KERNEL_MIN = 3;
export const LGL_KERNEL_MAX = 31;
/** `auto` clamps to this range (the paper's kernels). */
export const LGL_AUTO_MIN = 3;
export const LGL_AUTO_MAX = 15;

/** A one-line problem with an LGL kernel value, or undefined when it is usable. */
export function lglKernelProblem(k: number): string | undefined {
  if (!Number.isInteger(k) || k < LGL_KERNEL_MIN || k > LGL_KERNEL_MAX || k % 2 === 0)
    return `lgl-kernel must be an odd integer from ${LGL_KERNEL_MIN} to ${LGL_KERNEL_MAX}, got ${k}`;
  return undefined;
}

export function checkLglKernel(k: number): number {
  const problem = lglKernelProblem(k);
  if (problem) throw new UserError(problem);
  return k;
}

/**
 * K from a mean target diameter D̄ (pixels at the training input size): D̄/16 rounded to the nearest odd integer
 * (a tie, D̄/16 = 2j exactly, goes up), clamped to [3, 15].
 */
export function kernelFromDiameter(meanDiameter: number): number {
  if (!Number.isFinite(meanDiameter) || meanDiameter <= 0) return LGL_AUTO_MIN;
  const odd = 2 * Math.round((meanDiameter / 16 - 1) / 2) + 1;
  return Math.min(LGL_AUTO_MAX, Math.max(LGL_AUTO_MIN, odd));
}

/**
 * The equivalent-circle diameters 2·sqrt(area/π) of the connected foreground objects (8-connectivity) of a 0/1
 * mask [height, width], in scan order of their first pixel.
 */
export function objectDiameters(mask: Uint8Array, width: number, height: number): number[] {
  const label = new Int32Array(width * height);
  const stack: number[] = [];
  const out: number[] = [];
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || label[start]) continue;
    const id = out.length + 1;
    label[start] = id;
    stack.push(start);
    let area = 0;
    while (stack.length > 0) {
      const p = stack.pop()!;
      area++;
      const y = (p / width) | 0;
      const x = p - y * width;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const q = ny * width + nx;
          if (mask[q] && !label[q]) {
            label[q] = id;
            stack.push(q);
          }
        }
      }
    }
    out.push(2 * Math.sqrt(area / Math.PI));
  }
  return out;
}

/** What `--lgl-kernel auto` measured and chose (kept in a run's config.json). */
export interface LglKernelMeasurement {
  /** Mean equivalent-circle diameter of the objects, in pixels at the training input size. */
  meanDiameter: number;
  /** Connected foreground objects measured (every mask class separately). */
  objects: number;
  /** Training masks read (per class), and how many of them were empty. */
  masks: number;
  emptyMasks: number;
  /** The input size the masks were resized to. */
  size: number;
  kernel: number;
}

/** Pools per-mask object diameters into the measurement and its K. */
export class DiameterTally {
  private sum = 0;
  private objects = 0;
  private masks = 0;
  private empty = 0;

  add(mask: Uint8Array, width: number, height: number): void {
    const d = objectDiameters(mask, width, height);
    this.masks++;
    if (d.length === 0) this.empty++;
    for (const v of d) this.sum += v;
    this.objects += d.length;
  }

  result(size: number): LglKernelMeasurement {
    const meanDiameter = this.objects > 0 ? this.sum / this.objects : 0;
    return { meanDiameter, objects: this.objects, masks: this.masks, emptyMasks: this.empty, size, kernel: kernelFromDiameter(meanDiameter) };
  }
}

/** The one line `train --lgl-kernel auto` prints. */
export function describeMeasurement(m: LglKernelMeasurement): string {
  return (
    `--lgl-kernel auto: mean target diameter ${m.meanDiameter.toFixed(1)} px at ${m.size}x${m.size} ` +
    `(equivalent-circle diameter of ${m.objects} connected objects in ${m.masks} training masks, ${m.emptyMasks} empty); ` +
    `D/16 = ${(m.meanDiameter / 16).toFixed(2)} -> LGL kernel ${m.kernel}x${m.kernel}`
  );
}

/**
 * The LGL kernel of a MobileUtr state_dict from the shape of its first LocalAgg kernel (files of the official code
 * carry no metadata); undefined when there is none.
 */
export function lglKernelOfTensors(tensors: ReadonlyMap<string, { shape: readonly number[] }>): number | undefined {
  const shape = tensors.get('lklgl_bottleneck.0.LocalAgg.pos_embed.weight')?.shape;
  return shape && shape.length === 4 && shape[2] === shape[3] && lglKernelProblem(shape[2]!) === undefined ? shape[2] : undefined;
}
