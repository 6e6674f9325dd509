// `mobileutr worker`: takes segmentation jobs from the BullMQ queue on Redis and writes what `predict` writes for
// each (the same code: predict-core.ts), whole or not at all. Any number of workers, on any machines that see the
// same files at the same paths, may run at once; BullMQ gives each job to one worker at a time, and a job whose
// worker died (its lock expired) goes back to the queue for another.
import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker, type Job } from 'bullmq';
import type { Command } from 'commander';
import { volumeMetaFrom, type VolumeModelMeta } from '../data/volume/model-meta.ts';
import { UserError } from '../errors.ts';
import { readSafetensorsFile } from '../io/safetensors.ts';
import { removePartialOutputs, removeStalePartials, writeWhole } from '../io/write-whole.ts';
import { loadModel } from '../models/load.ts';
import type { SegmentationModel } from '../models/model.ts';
import { Segmenter } from '../pipeline/segmenter.ts';
import { checkVolumeModel } from '../pipeline/volume.ts';
import type { Device } from '../runtime/device.ts';
import { connectRedis, DEFAULT_REDIS_URL, shown } from '../queue/connection.ts';
import { checkQueueName, DEFAULT_QUEUE, type ModelSpec, type SegmentJob, type SegmentResult } from '../queue/jobs.ts';
import { failureOutcome } from '../queue/failure.ts';
import { ModelCache } from '../queue/model-cache.ts';
import { COMMAND_DESCRIPTIONS } from './descriptions.ts';
import { addDeviceOption, deviceFromFlags, type DeviceFlags } from './device-option.ts';
import { requireImageChannels } from './model-options.ts';
import { imageOutputs, predictVolumeCase, volumeOutputs } from './predict-core.ts';
import { formatDuration } from './progress.ts';
import { action, ensureOutputDir, fsProblem, intOption } from './run.ts';

interface WorkerFlags extends DeviceFlags {
  redis: string;
  queue: string;
  concurrency: number;
  threads: number;
  lockDuration: number;
  untilEmpty?: boolean;
  reportEvery: number;
}

/** A loaded model and its ONNX Runtime session, shared by the jobs that name the same model. */
interface LoadedModel {
  model: SegmentationModel;
  segmenter: Segmenter;
  /** Volume metadata of the weights (a volume model), else undefined. */
  meta: VolumeModelMeta | undefined;
}

type Models = ModelCache<ModelSpec, LoadedModel>;

/** How many times a job may come back from a dead (or stuck) worker; once more and it fails, attempts left or not. */
const MAX_STALLED_COUNT = 2;

/** How many different models a worker keeps loaded; the least recently used unused one goes first. */
const MODEL_CACHE_SIZE = 3;

function modelCache(threads: number, device: Device, worker: string): Models {
  return new ModelCache<ModelSpec, LoadedModel>({
    size: MODEL_CACHE_SIZE,
    // the weights file's size and time too: weights rewritten at the same path (a retrained best.safetensors; the
    // job ids hash their bytes, so they are new jobs) must not run on the model loaded from the old file
    key: async (spec) => {
      const file = spec.weights ? await stat(spec.weights).catch(() => undefined) : undefined;
      return JSON.stringify([spec, file ? [file.size, file.mtimeMs, file.ino] : null]);
    },
    load: async (spec) => {
      const model = await loadModel({ ...spec, model: spec.model === 'mobileutr' ? undefined : spec.model });
      const meta = spec.weights ? volumeMetaFrom((await readSafetensorsFile(spec.weights)).metadata, spec.weights) : undefined;
      const segmenter = await Segmenter.create(model, { threads, device });
      return { model, segmenter, meta };
    },
    release: (m) => m.segmenter.release(),
    onReleaseError: (e) => console.error(`worker ${worker}: could not release a model's session: ${(e as Error)?.message ?? e}`),
  });
}

/** Writes one output whole (temp file + rename), first removing temp files a killed worker left for it. */
async function writeJobOutput(path: string, bytes: Uint8Array): Promise<void> {
  try {
    await removeStalePartials(path);
    await writeWhole(path, bytes);
  } catch (e) {
    throw new UserError(`${path}: cannot write (${fsProblem(e)})`);
  }
}

/** Does one job: the files `predict` would write for its input. */
async function runJob(job: Job<SegmentJob, SegmentResult>, models: Models, worker: string): Promise<SegmentResult> {
  const d = job.data;
  const start = performance.now();
  await ensureOutputDir(d.out);
  const outputs = await models.use(d.model, async ({ model, segmenter, meta }) => {
    if (d.kind === 'image') {
      if (meta) throw new UserError(`${d.model.weights}: a volume model, but ${d.inputs[0]} is a 2-D image`);
      requireImageChannels(model, d.model.weights);
      const r = await segmenter.segment(d.inputs[0]!);
      const files = await imageOutputs(r, d.name, d);
      for (const f of files) await writeJobOutput(join(d.out, f.file), f.bytes);
      return files.map((f) => join(d.out, f.file));
    }
    if (!meta) throw new UserError(`${d.model.weights ?? 'the model'}: not a volume model (its weights have no "volume" metadata), but ${d.inputs[0]} is a volume`);
    checkVolumeModel(model.options, meta, d.model.weights!, d.inputs.length);
    const files = volumeOutputs(d.name, d).map((f) => join(d.out, f));
    for (const f of files) await removeStalePartials(f);
    await predictVolumeCase(segmenter, model, meta, { name: d.name, paths: d.inputs }, { out: d.out, batch: d.batch, prob: d.prob, volumeIndex: d.volumeIndex });
    return files;
  });
  return { outputs, worker, ms: Math.round(performance.now() - start) };
}

export function registerWorker(program: Command): void {
  addDeviceOption(program.command('worker').description(COMMAND_DESCRIPTIONS.worker))
    .option('--redis <url>', 'Redis URL (default $MOBILEUTR_REDIS_URL, else redis://127.0.0.1:6379)', DEFAULT_REDIS_URL)
    .option('--queue <name>', 'queue name', DEFAULT_QUEUE)
    .option('--concurrency <n>', 'jobs at once in this process', intOption(1), 1)
    .option('--threads <n>', 'ONNX Runtime threads per model', intOption(1), 2)
    .option('--lock-duration <ms>', "how long a job stays locked without this worker's renewal: a dead worker's job returns to the queue after about this long", intOption(1000), 30_000)
    .option('--until-empty', 'exit once the queue has no waiting, delayed or active jobs (for batch runs, e.g. a Kubernetes Job)')
    .option('--report-every <s>', 'seconds between progress lines', intOption(1), 10)
    .action(action(runWorker));
}

async function runWorker(flags: WorkerFlags): Promise<void> {
  const queueName = checkQueueName(flags.queue);
  const device = await deviceFromFlags(flags);
  // fails fast (one line) when Redis is not there at start; afterwards the connection is re-made for ever
  const { client, url } = await connectRedis(flags.redis, { reconnect: true });
  const name = `${hostname()}-${process.pid}`;
  const models = modelCache(flags.threads, device, name);
  let done = 0;
  let failed = 0;
  let doneAtReport = 0;
  let lastReport = performance.now();
  const started = performance.now();

  const worker = new Worker<SegmentJob, SegmentResult>(queueName, (job) => runJob(job, models, name), {
    connection: client,
    name,
    concurrency: flags.concurrency,
    lockDuration: flags.lockDuration,
    // a dead worker's job is found at most one lock duration after its lock expired
    stalledInterval: flags.lockDuration,
    // a job may come back from a dead worker twice before it counts as failed (its attempts count the errors)
    maxStalledCount: MAX_STALLED_COUNT,
    autorun: false,
  });

  let disconnected = false;
  const connectionLost = (e: unknown) => {
    if (disconnected || client.status === 'ready') return;
    disconnected = true;
    console.error(`worker ${name}: lost the connection to Redis at ${shown(url)} (${(e as Error)?.message ?? e}); reconnecting`);
  };
  worker.on('error', (e) => {
    if (client.status !== 'ready') connectionLost(e);
    else console.error(`worker ${name}: ${e.message}`);
  });
  client.on('error', connectionLost);
  client.on('ready', () => {
    if (!disconnected) return;
    disconnected = false;
    console.error(`worker ${name}: reconnected to Redis at ${shown(url)}`);
  });
  worker.on('completed', () => done++);
  worker.on('failed', (job, e) => {
    if (!job) return;
    // what BullMQ did with it: retried, or failed for good (no attempts left, or stalled too often)
    const { final, what } = failureOutcome(job, e, MAX_STALLED_COUNT);
    if (final) failed++;
    const input = job.data.inputs[0]!;
    console.error(`worker ${name}: ${what}: ${e.message.includes(input) ? '' : `${input}: `}${e.message}`);
  });

  const report = () => {
    const now = performance.now();
    const rate = (done - doneAtReport) / ((now - lastReport) / 1000);
    console.log(`worker ${name}: ${done} done (${rate.toFixed(1)} jobs/s now), ${failed} failed, up ${formatDuration((now - started) / 1000)}`);
    doneAtReport = done;
    lastReport = now;
  };
  const reporter = setInterval(report, flags.reportEvery * 1000);

  let stopping: Promise<void> | undefined;
  const stop = (why: string, code = 0): Promise<void> =>
    (stopping ??= (async () => {
      clearInterval(reporter);
      console.error(`worker ${name}: ${why}`);
      await worker.close(); // waits for the jobs in progress
      await models.releaseAll();
      client.disconnect();
      report();
      process.exit(code);
    })());

  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    process.on(signal, () => {
      if (stopping) {
        // a second signal: stop now; the unfinished job goes back to the queue when its lock expires
        removePartialOutputs();
        console.error(`worker ${name}: ${signal} again: exiting now`);
        process.exit(signal === 'SIGINT' ? 130 : 143);
      }
      void stop(`${signal}: finishing the job in progress, then exiting`);
    });

  if (flags.untilEmpty) {
    const queue = new Queue(queueName, { connection: client });
    const exitWhenEmpty = async () => {
      if (stopping) return;
      const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
      if (!stopping && Object.values(counts).every((n) => n === 0)) void stop('the queue is empty: exiting');
    };
    // checked when this worker finds no job, and every 2 s (other workers' jobs may still be active)
    worker.on('drained', () => void exitWhenEmpty().catch(() => undefined));
    setInterval(() => void exitWhenEmpty().catch(() => undefined), 2000).unref();
  }

  console.log(
    `worker ${name}: taking jobs from queue "${queueName}" at ${shown(url)}; ${flags.concurrency} at a time, ${flags.threads} ONNX Runtime thread${flags.threads === 1 ? '' : 's'} each; SIGTERM finishes the job in progress, then exits`,
  );
  await worker.run();
}
