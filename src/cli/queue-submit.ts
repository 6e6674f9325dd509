// `mobileutr queue submit`: one job per image or volume case of --input, each with a deterministic id.
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import { isNiftiPath } from '../data/volume/index.ts';
import { volumeMetaFrom } from '../data/volume/model-meta.ts';
import { UserError } from '../errors.ts';
import { readSafetensorsFile } from '../io/safetensors.ts';
import { checkVolumeModel } from '../pipeline/volume.ts';
import { shown } from '../queue/connection.ts';
import { hashInputs, JOB_NAME, jobId, type ModelSpec, type SegmentJob } from '../queue/jobs.ts';
import { withQueue } from '../queue/open.ts';
import { modelFromFlags, requireImageChannels, type ModelFlags } from './model-options.ts';
import { chooseInputs, findInputs, isImagePath, refuseSameNames, type Inputs } from './predict-core.ts';
import { ProgressLine } from './progress.ts';
import { ensureOutputDir } from './run.ts';
import type { QueueFlags } from './queue.ts';

export interface SubmitFlags extends QueueFlags, ModelFlags {
  input: string;
  out: string;
  prob?: boolean;
  overlay?: boolean;
  batch: number;
  volumeIndex?: number;
  attempts: number;
  backoff: number;
  json?: boolean;
}

/**
 * What --input names: a folder, an image, a volume, or a list file (one path a line, relative to the list's folder;
 * empty lines and # comments skipped), each entry being what `predict --input` takes.
 */
async function submitInputs(input: string): Promise<Inputs> {
  const info = await stat(input).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`${input}: ${e.code === 'ENOENT' ? 'not found' : `cannot read (${e.code ?? e.message})`}`);
  });
  if (info.isDirectory() || isImagePath(input) || isNiftiPath(input)) return findInputs(input);
  const text = await readFile(input, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`${input}: cannot read (${e.code ?? e.message})`);
  });
  if (text.includes('\0')) throw new UserError(`${input}: not an image, a volume, a folder or a list file (one path a line)`);
  const all: Inputs = { images: [], volumes: [] };
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    try {
      const found = await findInputs(resolve(dirname(input), line));
      all.images.push(...found.images);
      all.volumes.push(...found.volumes);
    } catch (e) {
      if (e instanceof UserError) throw new UserError(`${input}:${i + 1}: ${e.message}`);
      throw e;
    }
  }
  if (all.images.length === 0 && all.volumes.length === 0) throw new UserError(`${input}: the list names no images or volumes`);
  return all;
}

/** The submitted model's options, without the ones left out (the job id hashes them). */
function modelSpec(flags: ModelFlags): ModelSpec {
  const spec: ModelSpec = { model: flags.model };
  if (flags.size !== undefined) spec.size = flags.size;
  if (flags.inChannels !== undefined) spec.inChannels = flags.inChannels;
  if (flags.classes !== undefined) spec.classes = flags.classes;
  if (flags.weights !== undefined) spec.weights = resolve(flags.weights);
  return spec;
}

export async function submit(flags: SubmitFlags): Promise<void> {
  const inputs = await submitInputs(flags.input);
  const meta = flags.weights ? volumeMetaFrom((await readSafetensorsFile(flags.weights)).metadata, flags.weights) : undefined;
  const chosen = chooseInputs(flags.input, flags.weights, inputs, meta);
  // the model is built once here, so that a wrong option or weights file fails now rather than in every job
  const model = await modelFromFlags(flags);
  const out = resolve(flags.out);
  const spec = modelSpec(flags);
  const base = { out, model: spec, prob: Boolean(flags.prob), overlay: Boolean(flags.overlay), batch: flags.batch, ...(flags.volumeIndex !== undefined ? { volumeIndex: flags.volumeIndex } : {}) };
  let jobs: Omit<SegmentJob, 'contentHash'>[];
  if (chosen.kind === 'image') {
    if (chosen.images.length === 0) throw new UserError(`${flags.input}: no images or volumes`);
    refuseSameNames(flags.input, chosen.images.map((f) => [basename(f, extname(f)), basename(f)]), '.png');
    requireImageChannels(model, flags.weights);
    if (!flags.weights) console.warn('warning: no --weights given: the jobs will predict with default-initialised (untrained) weights');
    jobs = chosen.images.map((f) => ({ kind: 'image', name: basename(f, extname(f)), inputs: [resolve(f)], ...base }));
  } else {
    refuseSameNames(flags.input, chosen.volumes.map((v) => [v.name, basename(v.paths[0]!)]), '.nii.gz');
    checkVolumeModel(model.options, chosen.meta, flags.weights!, chosen.volumes[0]!.paths.length);
    if (flags.overlay) console.warn('warning: --overlay applies to 2-D images; volumes get label maps only');
    jobs = chosen.volumes.map((v) => ({ kind: 'volume', name: v.name, inputs: v.paths.map((p) => resolve(p)), ...base, overlay: false }));
  }
  await ensureOutputDir(out);
  const weightsHash = flags.weights ? await hashInputs([flags.weights]) : undefined;

  await withQueue(flags, async (queue, client, url) => {
    // content hashes: the id changes when a file's bytes change, and only then
    const hashing = new ProgressLine('hashing', jobs.length, 'inputs');
    const full: SegmentJob[] = [];
    for (const [i, j] of jobs.entries()) {
      full.push({ ...j, contentHash: await hashInputs(j.inputs) });
      hashing.update(i + 1);
    }
    hashing.done();
    const ids = full.map((j) => jobId(j, weightsHash));
    const enqueue = new ProgressLine('enqueue', full.length, 'jobs');
    let added = 0;
    const CHUNK = 500;
    for (let i = 0; i < full.length; i += CHUNK) {
      const chunk = full.slice(i, i + CHUNK);
      const chunkIds = ids.slice(i, i + CHUNK);
      // BullMQ adds nothing for an id it holds, but does not say so: count the new ones first
      const exists = await chunkIds.reduce((p, id) => p.exists(queue.toKey(id)), client.pipeline()).exec();
      const fresh = chunk.flatMap((data, k) => (exists?.[k]?.[1] === 0 ? [{ data, id: chunkIds[k]! }] : []));
      await queue.addBulk(
        fresh.map(({ data, id }) => ({
          name: JOB_NAME,
          data,
          opts: { jobId: id, attempts: flags.attempts, backoff: { type: 'exponential', delay: flags.backoff }, removeOnComplete: false, removeOnFail: false },
        })),
      );
      added += fresh.length;
      enqueue.update(Math.min(i + CHUNK, full.length));
    }
    enqueue.done();
    const existing = full.length - added;
    if (flags.json) console.log(JSON.stringify({ queue: queue.name, added, existing }));
    else
      console.log(
        `queue "${queue.name}" at ${shown(url)}: added ${added} job${added === 1 ? '' : 's'}, ${existing} already there (${full.length} ${chosen.kind === 'image' ? 'images' : 'volumes'}); outputs go to ${out}`,
      );
  });
}

