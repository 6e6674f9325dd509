// Batches of training pairs: shuffling, the original augmentation, resize, collation, read-ahead. Where pairs come
// from is a function (sharp and files on Node: loader.ts; canvas-decoded files in the browser), so both trainers
// produce the same batches from the same pixels.
import { pixelsToTensor } from '../pipeline/normalize.ts';
import { Rng } from '../util/rng.ts';
import { randomRotateFlip } from './augment.ts';
import { resizePairCv2, type Pair, type Sample } from './pairs.ts';

export interface Batch {
  ids: string[];
  /** Normalised images [n, inChannels, size, size]. */
  images: Float32Array;
  /** Targets [n, classes, size, size] with 0/1 values. */
  targets: Float32Array;
  n: number;
}

export interface BatcherOptions {
  size: number;
  inChannels: number;
  /** Keep decoded pairs in memory (decode once, augment and resize every epoch). */
  cache?: boolean;
  /**
   * Rotate and flip the resized sample instead of the stored image (then cache the resized samples: less memory
   * and work per epoch). The original protocol augments first and resizes after, which is the default: cv2's
   * nearest-neighbour mask resize does not commute with flips, so the two orders differ on edge pixels.
   */
  augmentAfterResize?: boolean;
}

/** Turns samples into one normalised batch. */
export function collate(samples: Sample[], inChannels: number): Batch {
  const { size, classes } = samples[0]!;
  const plane = size * size;
  const images = new Float32Array(samples.length * inChannels * plane);
  const targets = new Float32Array(samples.length * classes * plane);
  samples.forEach((s, i) => {
    pixelsToTensor(s.image, size, size, s.channels, inChannels, images.subarray(i * inChannels * plane, (i + 1) * inChannels * plane));
    for (let j = 0; j < classes * plane; j++) targets[i * classes * plane + j] = s.mask[j]!;
  });
  return { ids: samples.map((s) => s.id), images, targets, n: samples.length };
}

/**
 * Yields batches of pairs that `loadPair` decodes at their stored size; decoding of the next batch overlaps the
 * consumer's work on the current one.
 */
export class Batcher {
  private readonly cache = new Map<string, Promise<Pair | Sample>>();

  constructor(
    private readonly loadPair: (id: string) => Promise<Pair>,
    protected readonly o: BatcherOptions,
  ) {}

  private cached<T extends Pair | Sample>(id: string, load: () => Promise<T>): Promise<T> {
    const hit = this.cache.get(id);
    if (hit) return hit as Promise<T>;
    const p = load();
    if (this.o.cache !== false) {
      this.cache.set(id, p);
      p.catch(() => this.cache.delete(id));
    }
    return p;
  }

  private pair(id: string): Promise<Pair> {
    return this.cached(id, () => this.loadPair(id));
  }

  /** One pair at the model size, not augmented. */
  sample(id: string): Promise<Sample> {
    if (this.o.augmentAfterResize) return this.cached(id, async () => resizePairCv2(await this.loadPair(id), this.o.size));
    return this.pair(id).then((p) => resizePairCv2(p, this.o.size));
  }

  private async augmented(id: string, rng: Rng): Promise<Sample> {
    if (this.o.augmentAfterResize) return randomRotateFlip(await this.sample(id), rng);
    return resizePairCv2(randomRotateFlip(await this.pair(id), rng), this.o.size);
  }

  /**
   * Batches of `ids` in order (shuffle with `rng` when given), augmented when `augment`; `skip` resumes mid-epoch.
   * The last batch is smaller when `batch` does not divide the ids (the original `drop_last=False`), unless `dropLast`.
   */
  async *batches(
    ids: readonly string[],
    o: { batch: number; rng?: Rng; augment?: boolean; dropLast?: boolean; skip?: number },
  ): AsyncGenerator<Batch> {
    const order = o.rng ? o.rng.shuffle([...ids]) : [...ids];
    const groups: string[][] = [];
    for (let i = 0; i < order.length; i += o.batch) {
      const g = order.slice(i, i + o.batch);
      if (g.length === o.batch || !o.dropLast) groups.push(g);
    }
    // augmentation draws come from the rng in batch order, before any decoding finishes: results do not depend on timing
    const seeds = groups.map((g) => g.map(() => (o.augment && o.rng ? o.rng.nextU32() : 0)));
    const make = async (k: number): Promise<Batch> => {
      const samples = await Promise.all(groups[k]!.map((id, i) => (o.augment && o.rng ? this.augmented(id, new Rng(seeds[k]![i]!)) : this.sample(id))));
      return collate(samples, this.o.inChannels);
    };
    const first = o.skip ?? 0;
    let next = groups.length > first ? make(first) : undefined;
    for (let k = first; k < groups.length; k++) {
      const current = await next!;
      next = k + 1 < groups.length ? make(k + 1) : undefined;
      next?.catch(() => undefined); // surfaced when awaited
      yield current;
    }
  }
}

/** Targets as the model wants them: K mask folders -> K channels for a sigmoid model, one-hot K+1 for softmax. */
export function modelTargets(batch: Batch, maskClasses: number, modelClasses: number, plane: number): Float32Array {
  if (modelClasses === maskClasses) return batch.targets;
  const out = new Float32Array(batch.n * modelClasses * plane);
  for (let i = 0; i < batch.n; i++)
    for (let p = 0; p < plane; p++) {
      let cls = 0;
      for (let k = 0; k < maskClasses; k++) if (batch.targets[(i * maskClasses + k) * plane + p]) cls = k + 1;
      out[(i * modelClasses + cls) * plane + p] = 1;
    }
  return out;
}
