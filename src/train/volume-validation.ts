/**
 * The validation score of a volume run, each epoch: every slice of every validation case at the network size,
 * 3-D overlap per case and foreground class (summed over the case's slices), then the mean over cases per class and
 * over classes. A class absent from both the truth and the prediction of a case says nothing and is left out of
 * that case. This is a fast proxy for choosing the checkpoint; `mobileutr eval` scores on the source grid.
 */
import type { SliceLoader } from '../data/volume/loader.ts';
import type { Slice } from '../data/volume/slices.ts';
import type { LogitsSource } from '../eval/evaluate.ts';
import { logitsToMask } from '../pipeline/postprocess.ts';

export interface VolumeValidation {
  /** Mean over classes of the mean over cases. */
  dice: number;
  iou: number;
  /** Per foreground class (index k-1 for class k): mean Dice over the cases where it was scored, or null. */
  perClass: (number | null)[];
}

export async function validateVolumes(loader: SliceLoader, ids: readonly string[], runner: LogitsSource, batch: number): Promise<VolumeValidation> {
  const classes = loader.classes;
  const sums = Array.from({ length: classes - 1 }, () => ({ dice: 0, iou: 0, n: 0 }));
  for (const id of ids) {
    // voxel counts per class: intersection, prediction, truth
    const inter = new Float64Array(classes);
    const pred = new Float64Array(classes);
    const truth = new Float64Array(classes);
    const score = async (slices: Slice[]) => {
      const b = loader.collate(slices);
      const logits = await runner.logits(b.images, b.n);
      const plane = b.labels.length / b.n;
      for (let i = 0; i < b.n; i++) {
        const cls = logitsToMask(logits.subarray(i * classes * plane, (i + 1) * classes * plane), classes, plane);
        for (let p = 0; p < plane; p++) {
          const c = cls[p]!;
          const t = b.labels[i * plane + p]!;
          pred[c]!++;
          truth[t]!++;
          if (c === t) inter[c]!++;
        }
      }
    };
    let pending: Slice[] = [];
    for await (const s of loader.caseSlices(id)) {
      pending.push(s);
      if (pending.length === batch) {
        await score(pending);
        pending = [];
      }
    }
    if (pending.length) await score(pending);
    for (let k = 1; k < classes; k++) {
      if (pred[k] === 0 && truth[k] === 0) continue;
      const s = sums[k - 1]!;
      s.dice += (2 * inter[k]!) / (pred[k]! + truth[k]!);
      s.iou += inter[k]! / (pred[k]! + truth[k]! - inter[k]!);
      s.n++;
    }
  }
  const scored = sums.filter((s) => s.n > 0);
  const mean = (f: (s: (typeof sums)[number]) => number) => (scored.length ? scored.reduce((a, s) => a + f(s) / s.n, 0) / scored.length : 0);
  return { dice: mean((s) => s.dice), iou: mean((s) => s.iou), perClass: sums.map((s) => (s.n ? s.dice / s.n : null)) };
}
