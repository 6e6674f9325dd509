/**
 * Streaming slice batches from a volume dataset within a memory budget, however many cases it has:
 * - a {@link VolumeCache} keeps prepared cases (8-bit channels + class indices, see slices.ts) up to `memoryBytes`,
 *   dropping the least recently used; a single case larger than the budget is still held, alone;
 * - an epoch shuffles the cases, takes them in windows whose cases fit the budget together, and shuffles the
 *   slices within each window (a shuffle buffer: slices mix across the cases of a window, never across the split);
 * - the split is by case (`splitCases`): the slices of one patient are never on both sides.
 *
 * @example
 *   const ds = await scanVolumeDataset('Dataset004_Hippocampus');
 *   const { train, val } = splitCases(ds, 0.2, 1234);
 *   const loader = new SliceLoader(ds, { size: 64, intensity: { kind: 'mri' }, memoryBytes: 512 * 2 ** 20 });
 *   for await (const b of loader.batches(train, { batch: 8, rng: new Rng(1) })) train(b.images, b.targets);
 */
import { readFile } from 'node:fs/promises';
import { UserError } from '../../errors.ts';
import type { Rng } from '../../util/rng.ts';
import { makeSplit } from '../split.ts';
import { augmentSlice } from './augment.ts';
import type { VolumeCase, VolumeDataset } from './dataset.ts';
import type { Intensity } from './intensity.ts';
import { readNiftiHeader } from './nifti-read.ts';
import { prepareCase } from './prepare.ts';
import { classValues, sliceChannels, sliceCount, sliceOf, type PreparedCase, type Slice, type SliceAxis } from './slices.ts';
import { reorientation } from './orientation.ts';
import { voxelCount } from './volume.ts';

const AXIS_INDEX: Record<SliceAxis, 0 | 1 | 2> = { sagittal: 0, coronal: 1, axial: 2 };

/** The default budget for decoded volumes: 1 GiB. */
export const DEFAULT_MEMORY_BYTES = 2 ** 30;

/** Least-recently-used cache of prepared cases, bounded by their bytes. */
export class VolumeCache {
  private readonly entries = new Map<string, Promise<PreparedCase>>();
  private readonly sizes = new Map<string, number>();
  /** Bytes of the cases held now, and the most ever held. */
  bytes = 0;
  peakBytes = 0;
  /** Cases read from disk (misses). */
  loads = 0;

  constructor(
    readonly budgetBytes: number,
    private readonly load: (id: string) => Promise<PreparedCase>,
  ) {}

  get(id: string): Promise<PreparedCase> {
    const hit = this.entries.get(id);
    if (hit) {
      this.entries.delete(id); // re-insert: Map order is recency order
      this.entries.set(id, hit);
      return hit;
    }
    this.loads++;
    const p = this.load(id).then((c) => {
      if (this.entries.get(id) === p) {
        this.sizes.set(id, c.bytes);
        this.bytes += c.bytes;
        this.evict(id);
        this.peakBytes = Math.max(this.peakBytes, this.bytes);
      }
      return c;
    });
    this.entries.set(id, p);
    p.catch(() => this.drop(id));
    return p;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  private drop(id: string): void {
    this.entries.delete(id);
    this.bytes -= this.sizes.get(id) ?? 0;
    this.sizes.delete(id);
  }

  /** Drops least recently used loaded cases (never `keep`) until the budget holds. */
  private evict(keep: string): void {
    for (const id of [...this.entries.keys()]) {
      if (this.bytes <= this.budgetBytes) return;
      if (id !== keep && this.sizes.has(id)) this.drop(id);
    }
  }
}

export interface SliceLoaderOptions {
  size: number;
  intensity: Intensity;
  /** Axial by default. */
  axis?: SliceAxis;
  /** 1: the neighbouring slices as extra channels (2.5-D). */
  context?: number;
  /** Budget for prepared cases held at once; default {@link DEFAULT_MEMORY_BYTES}. */
  memoryBytes?: number;
  /** Classes without a dataset.json: label values 0..classes-1 (default 2). */
  classes?: number;
  volumeIndex?: number;
}

export interface SliceBatch {
  /** `<case>:<slice>` per sample. */
  ids: string[];
  /** [n, inChannels, size, size]. */
  images: Float32Array;
  /** Class index per pixel [n, size, size]. */
  labels: Uint8Array;
  /** One-hot over all classes, background included [n, classes, size, size] (softmax targets). */
  targets: Float32Array;
  n: number;
}

/** A split by case: `train.txt`/`val.txt` hold case ids (same seeded shuffle as the 2-D split). */
export function splitCases(ds: VolumeDataset, valFraction: number, seed: number): { train: string[]; val: string[] } {
  return makeSplit(
    ds.cases.map((c) => c.id),
    valFraction,
    seed,
  );
}

export class SliceLoader {
  readonly cache: VolumeCache;
  private readonly byId: Map<string, VolumeCase>;
  private readonly estimates = new Map<string, number>();
  private readonly counts = new Map<string, number>();
  /** Classes of the softmax: background + the labels of dataset.json (or `classes`, default 2, without one). */
  readonly classes: number;
  readonly inChannels: number;
  readonly axis: SliceAxis;

  constructor(
    readonly ds: VolumeDataset,
    private readonly o: SliceLoaderOptions,
  ) {
    if (!(o.context === undefined || o.context === 0 || o.context === 1)) throw new UserError(`--slice-context must be 0 or 1, got ${o.context}`);
    this.byId = new Map([...ds.cases, ...ds.testCases].map((c) => [c.id, c]));
    this.axis = o.axis ?? 'axial';
    this.classes = classValues(ds.labels)?.length ?? o.classes ?? 2;
    this.inChannels = sliceChannels(ds.channels.length, o.context ?? 0);
    this.cache = new VolumeCache(o.memoryBytes ?? DEFAULT_MEMORY_BYTES, (id) => prepareCase(this.case(id), { intensity: o.intensity, labels: ds.labels, classes: this.classes, volumeIndex: o.volumeIndex }));
  }

  private case(id: string): VolumeCase {
    const c = this.byId.get(id);
    if (!c) throw new UserError(`${this.ds.root}: no case "${id}"`);
    return c;
  }

  /** One prepared case (through the cache). */
  prepared(id: string): Promise<PreparedCase> {
    return this.cache.get(id);
  }

  /** Every slice of a case in order, not augmented (evaluation: reassemble the volume from them). */
  async *caseSlices(id: string): AsyncGenerator<Slice> {
    const p = await this.prepared(id);
    for (let k = 0; k < sliceCount(p, this.axis); k++) yield sliceOf(p, this.axis, k, this.o);
  }

  /** Bytes a case will take once prepared: from the NIfTI headers when it is not loaded yet (a DICOM case is loaded). */
  async caseBytes(id: string): Promise<number> {
    await this.measure(id);
    return this.estimates.get(id)!;
  }

  /** Slices of a case along the loader's axis, from its header when it is not loaded yet. */
  async caseSliceCount(id: string): Promise<number> {
    await this.measure(id);
    return this.counts.get(id)!;
  }

  /** Slices of all these cases (an epoch's length), from their headers. */
  async sliceTotal(ids: readonly string[]): Promise<number> {
    let n = 0;
    for (const id of ids) n += await this.caseSliceCount(id);
    return n;
  }

  private async measure(id: string): Promise<void> {
    if (this.estimates.has(id)) return;
    const c = this.case(id);
    if (c.images.every((p) => /\.nii(\.gz)?$/i.test(p))) {
      const header = readNiftiHeader(await readFile(c.images[0]!), c.images[0]!);
      this.estimates.set(id, voxelCount(header.dims) * (c.images.length + (c.label ? 1 : 0)));
      this.counts.set(id, reorientation(header.dims, header.affine).dims[AXIS_INDEX[this.axis]]);
    } else {
      const p = await this.prepared(id);
      this.estimates.set(id, p.bytes);
      this.counts.set(id, sliceCount(p, this.axis));
    }
  }

  /**
   * Batches of slices of `ids` (cases), shuffled with `rng` when given (cases, then slices within each window of
   * cases that fit the memory budget). The last batch is smaller unless `dropLast`. With `augment`, each slice gets
   * TransUNet's random rotation/flip (augment.ts) from `rng`, in batch order. `skip` batches are drawn but not
   * yielded (a resumed epoch continues with the same data and augmentation).
   */
  async *batches(ids: readonly string[], o: { batch: number; rng?: Rng; dropLast?: boolean; augment?: boolean; skip?: number }): AsyncGenerator<SliceBatch> {
    let produced = 0;
    const emit = (slices: Slice[]) => (produced++ < (o.skip ?? 0) ? undefined : this.collate(slices));
    const order = o.rng ? o.rng.shuffle([...ids]) : [...ids];
    let pending: Slice[] = [];
    let at = 0;
    while (at < order.length) {
      // a window: cases that fit the budget together (at least one)
      const window: string[] = [];
      let bytes = 0;
      while (at < order.length) {
        const b = await this.caseBytes(order[at]!);
        if (window.length > 0 && bytes + b > this.cache.budgetBytes) break;
        window.push(order[at++]!);
        bytes += b;
      }
      const cases: PreparedCase[] = [];
      for (const id of window) cases.push(await this.prepared(id));
      const slices = cases.flatMap((p, c) => Array.from({ length: sliceCount(p, this.axis) }, (_, k) => [c, k] as const));
      if (o.rng) o.rng.shuffle(slices);
      for (const [c, k] of slices) {
        const slice = sliceOf(cases[c]!, this.axis, k, this.o);
        pending.push(o.augment && o.rng ? augmentSlice(slice, this.o.size, o.rng) : slice);
        if (pending.length === o.batch) {
          const batch = emit(pending);
          if (batch) yield batch;
          pending = [];
        }
      }
    }
    if (pending.length > 0 && !o.dropLast) {
      const batch = emit(pending);
      if (batch) yield batch;
    }
  }

  /** Slices into one batch with one-hot targets. */
  collate(slices: Slice[]): SliceBatch {
    const n = slices.length;
    const plane = this.o.size * this.o.size;
    const images = new Float32Array(n * this.inChannels * plane);
    const labels = new Uint8Array(n * plane);
    const targets = new Float32Array(n * this.classes * plane);
    slices.forEach((s, i) => {
      images.set(s.image, i * this.inChannels * plane);
      labels.set(s.label, i * plane);
      const base = i * this.classes * plane;
      for (let p = 0; p < plane; p++) targets[base + s.label[p]! * plane + p] = 1;
    });
    return { ids: slices.map((s) => s.id), images, labels, targets, n };
  }
}
