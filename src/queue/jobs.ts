/**
 * The segmentation job queue's vocabulary: what one job holds, its deterministic id, the queue's options.
 * One job is one input of `predict`: an image or a volume case; its outputs are the files `predict` writes for it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.ts';

/** The queue's name when --queue is not given. */
export const DEFAULT_QUEUE = 'mobileutr';

/** BullMQ's job name for every job of ours (the kind of input is in the data). */
export const JOB_NAME = 'segment';

/** The model a job runs: predict's model options; absolute paths (every worker must see the same files there). */
export interface ModelSpec {
  model?: string;
  size?: number;
  inChannels?: number;
  classes?: number;
  weights?: string;
}

/** One job: one image, or one volume case (its channel files, or a DICOM series folder). */
export interface SegmentJob {
  kind: 'image' | 'volume';
  /** Output base name: `<name>.png` or `<name>.nii.gz` (predict's naming). */
  name: string;
  /** Absolute paths: one image, or a volume case's files. */
  inputs: string[];
  /** Absolute output folder. */
  out: string;
  model: ModelSpec;
  prob: boolean;
  overlay: boolean;
  /** Volumes: slices per network run. */
  batch: number;
  /** Volumes: the volume of 4-D files to segment. */
  volumeIndex?: number;
  /** sha256 of the input's bytes when it was submitted. */
  contentHash: string;
}

/** What a finished job returns (kept by BullMQ with the job). */
export interface SegmentResult {
  /** Absolute paths of the files written. */
  outputs: string[];
  /** The worker that wrote them (host-pid). */
  worker: string;
  ms: number;
}

/** Queue names become Redis key parts: letters, digits, dot, dash, underscore. */
export function checkQueueName(name: string): string {
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(name)) throw new UserError(`--queue "${name}": use letters, digits, ".", "-" and "_" only`);
  return name;
}

/**
 * The job's id: a hash of the input's path and bytes and of everything that decides its outputs (output folder,
 * model and weights, options). Submitting the same input again gives the same id, and BullMQ adds no second job.
 */
export function jobId(job: SegmentJob, weightsHash: string | undefined): string {
  const key = JSON.stringify([job.kind, job.inputs, job.contentHash, job.out, job.model, weightsHash ?? null, job.prob, job.overlay, job.batch, job.volumeIndex ?? null]);
  return `seg-${createHash('sha256').update(key).digest('hex').slice(0, 40)}`;
}

async function hashFileInto(hash: ReturnType<typeof createHash>, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = createReadStream(path);
    s.on('data', (d) => hash.update(d));
    s.on('error', reject);
    s.on('end', resolve);
  });
}

/** sha256 of the bytes of `paths` in order; a folder (DICOM series) counts as its files, sorted by name. */
export async function hashInputs(paths: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const path of paths) {
    const info = await stat(path).catch((e: NodeJS.ErrnoException) => {
      throw new UserError(`${path}: ${e.code === 'ENOENT' ? 'not found' : `cannot read (${e.code ?? e.message})`}`);
    });
    if (info.isDirectory()) {
      const files = (await readdir(path, { withFileTypes: true })).filter((e) => e.isFile() && !e.name.startsWith('.')).map((e) => e.name).sort();
      for (const f of files) {
        hash.update(`\0${f}\0`);
        await hashFileInto(hash, join(path, f));
      }
    } else await hashFileInto(hash, path);
    hash.update('\0');
  }
  return hash.digest('hex');
}
