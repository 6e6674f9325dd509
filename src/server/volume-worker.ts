// One volume request at a time, off the main thread: decode the NIfTI (bounded gunzip), the training
// preprocessing, slicing, resizing back and the label NIfTI (gzip). The network itself is not here: each batch of
// slices goes back to the main thread, which runs it through the service's batcher and inference workers.
import { parentPort } from 'node:worker_threads';
import { gzipSync } from 'node:zlib';
import { UserError } from '../errors.ts';
import type { VolumeModelMeta } from '../data/volume/model-meta.ts';
import { decodeNifti } from '../data/volume/nifti-read.ts';
import { encodeLabelNifti } from '../data/volume/nifti-write.ts';
import { segmentVolume, type VolumeModelOptions } from '../pipeline/volume.ts';

/** main -> worker */
export type ToVolumeWorker =
  | { type: 'job'; id: number; bytes: Uint8Array; source: string; maxVoxels: number; meta: VolumeModelMeta; options: VolumeModelOptions; batch: number }
  | { type: 'logits'; id: number; call: number; logits: Float32Array }
  | { type: 'logits-error'; id: number; call: number; message: string };

/** What the service reports about a segmented volume (the JSON answer is built from it). */
export interface VolumeSummary {
  dims: [number, number, number];
  spacing: [number, number, number];
  datatype: string;
  niftiVersion: 1 | 2;
  axis: string;
  slices: number;
  /** |det| of the affine's 3 × 3 part: one voxel's volume in mm³. */
  voxelMm3: number;
  /** Voxels of each class, in class order (background first). */
  classVoxels: number[];
  timing: { decode: number; inference: number; other: number; encode: number };
}

/** worker -> main */
export type FromVolumeWorker =
  | { type: 'ready' }
  | { type: 'logits'; id: number; call: number; batch: Float32Array; n: number }
  | { type: 'done'; id: number; nifti: Uint8Array; summary: VolumeSummary }
  | { type: 'error'; id: number; user: boolean; message: string; stack?: string };

const port = parentPort!;
const calls = new Map<number, { resolve: (l: Float32Array) => void; reject: (e: Error) => void }>();
let nextCall = 1;

function runnerFor(id: number) {
  return {
    logits(batch: Float32Array, n: number): Promise<Float32Array> {
      const call = nextCall++;
      const own = batch.slice(); // its own buffer, transferred
      return new Promise((resolve, reject) => {
        calls.set(call, { resolve, reject });
        port.postMessage({ type: 'logits', id, call, batch: own, n } satisfies FromVolumeWorker, [own.buffer as ArrayBuffer]);
      });
    },
  };
}

async function run(job: Extract<ToVolumeWorker, { type: 'job' }>): Promise<void> {
  const t0 = performance.now();
  const volume = decodeNifti(job.bytes, job.source, { maxVoxels: job.maxVoxels });
  const decode = performance.now() - t0;
  const seg = await segmentVolume(runnerFor(job.id), job.options, volume, job.meta, { batch: job.batch });
  const t1 = performance.now();
  const nifti = new Uint8Array(gzipSync(encodeLabelNifti(seg.labels, volume.grid, 'mobileutr labels')));
  const encode = performance.now() - t1;
  const classVoxels = new Array<number>(job.meta.classValues.length).fill(0);
  for (const c of seg.classMap) classVoxels[c]!++;
  const a = volume.affine;
  const det =
    a[0]![0]! * (a[1]![1]! * a[2]![2]! - a[1]![2]! * a[2]![1]!) -
    a[0]![1]! * (a[1]![0]! * a[2]![2]! - a[1]![2]! * a[2]![0]!) +
    a[0]![2]! * (a[1]![0]! * a[2]![1]! - a[1]![1]! * a[2]![0]!);
  const summary: VolumeSummary = {
    dims: [...volume.dims],
    spacing: [...volume.spacing],
    datatype: volume.datatype,
    niftiVersion: volume.grid.version,
    axis: seg.axis,
    slices: seg.slices,
    voxelMm3: Math.abs(det),
    classVoxels,
    timing: { decode, inference: seg.timing.inferenceMs, other: seg.timing.totalMs - seg.timing.inferenceMs, encode },
  };
  port.postMessage({ type: 'done', id: job.id, nifti, summary } satisfies FromVolumeWorker, [nifti.buffer as ArrayBuffer]);
}

port.on('message', (m: ToVolumeWorker) => {
  if (m.type === 'job') {
    run(m).catch((e: Error) => {
      for (const c of calls.values()) c.reject(new Error('job ended'));
      calls.clear();
      port.postMessage({ type: 'error', id: m.id, user: e instanceof UserError, message: e?.message ?? String(e), stack: e?.stack } satisfies FromVolumeWorker);
    });
    return;
  }
  const c = calls.get(m.call);
  if (!c) return;
  calls.delete(m.call);
  if (m.type === 'logits') c.resolve(m.logits);
  else c.reject(new Error(m.message));
});
port.postMessage({ type: 'ready' } satisfies FromVolumeWorker);
