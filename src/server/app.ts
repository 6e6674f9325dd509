import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { availableParallelism } from 'node:os';
import { Server as TlsServer } from 'node:tls';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { encodePng, MAX_IMAGE_PIXELS } from '../data/image.ts';
import type { VolumeModelMeta } from '../data/volume/model-meta.ts';
import { MAX_VOLUME_VOXELS } from '../data/volume/nifti-read.ts';
import { UserError } from '../errors.ts';
import type { SegmentationModel } from '../models/model.ts';
import { masksFromLogits, prepareImage } from '../pipeline/stages.ts';
import { checkVolumeModel } from '../pipeline/volume.ts';
import { Batcher } from './batcher.ts';
import { ApiKeys, keyLabel, REALM } from './auth.ts';
import { decodeDicomUpload, looksLikeDicom, type DicomInfo } from './dicom.ts';
import { HttpError } from './errors.ts';
import { ServiceMetrics } from './metrics.ts';
import { checkImageHeader, FIELD, RAW_CONTENT_TYPES, readUpload, tooLarge } from './upload.ts';
import type { WorkerTestHooks } from './inference-worker.ts';
import { WorkerLostError, WorkerPool, type BatchRunner, type RestartPolicy } from './worker-pool.ts';
import { checkVolumeHeader, looksLikeNifti, notAVolume, notAVolumeModel, VOLUME_CONTENT_TYPES, VOLUME_SOURCE, volumeJson } from './volume.ts';
import { VolumeWorkers } from './volume-pool.ts';

export interface ServerOptions {
  model: SegmentationModel;
  /** Where the weights came from (a path); undefined means default-initialised weights, which the service flags loudly. */
  weightsSource?: string;
  /** ONNX Runtime intra-op threads per inference worker. */
  threads?: number;
  /**
   * Where the inference workers' sessions run (default 'cpu'; 'webgpu': onnxruntime-node's WebGPU execution
   * provider, see SessionOptions.device; resolve a user's 'auto' first with resolveDevice).
   */
  device?: 'cpu' | 'webgpu';
  /** Inference workers: batches that run at the same time. */
  concurrency?: number;
  /** Images per batch at most. */
  maxBatch?: number;
  /** Requests that may wait beyond the concurrency × maxBatch being run; more are refused with 503. */
  queue?: number;
  /** Largest accepted upload in bytes (raw body or the multipart file). */
  maxUploadBytes?: number;
  /** Largest accepted image in pixels (width × height), checked from the header before decoding. */
  maxPixels?: number;
  /**
   * The weights' volume metadata (`volumeMetaFrom`): with it the service segments NIfTI volumes (and only those);
   * without it, 2-D images.
   */
  volume?: VolumeModelMeta;
  /** Largest accepted volume in voxels, checked from the NIfTI header before anything is inflated. */
  maxVoxels?: number;
  /** Volumes processed at once (one worker thread each; the others wait). Bounds the decoded volumes in memory. */
  volumeWorkers?: number;
  /** Time limit of a request, from its arrival: receiving the body, waiting, decoding, inference, encoding. */
  timeoutMs?: number;
  /** Images decoded or encoded at once (default: the CPU count, from 2 to 4); bounds full-size pixel buffers. */
  imageConcurrency?: number;
  /** Runs the network in this thread with this runner instead of worker processes (tests); the server does not close it. */
  runner?: BatchRunner;
  /**
   * How dead inference workers are restarted: exponential backoff from `baseMs` (100 ms) doubling per crash in a
   * row up to `maxMs` (30 s); see RestartPolicy.
   */
  restart?: Partial<RestartPolicy>;
  /** Test hooks for the inference worker processes (crash at start, slow runs); tests only, not a CLI option. */
  workerTestHooks?: WorkerTestHooks;
  /**
   * Fastify/pino logger options; off by default. Lines are JSON with a request id (`reqId`); the Authorization
   * header is redacted wherever it would appear, and no upload file name, pixel or DICOM tag is ever logged.
   */
  logger?: FastifyServerOptions['logger'];
  /**
   * API keys: with them every request except GET /healthz (and GET /metrics with `metricsOpen`) needs
   * `Authorization: Bearer <key>`, else 401. Without them the service is open (the CLI allows that only on a
   * loopback address, or with --no-auth).
   */
  apiKeys?: ApiKeys;
  /** GET /metrics without a key (for a scraper on a trusted network). */
  metricsOpen?: boolean;
  /**
   * Requests per minute per API key (per client address without keys), 429 + Retry-After beyond; GET /healthz and
   * GET /metrics are not counted. Off when undefined or 0.
   */
  rateLimitPerMinute?: number;
  /** HTTPS with this PEM certificate (chain) and key (see tls.ts readTlsFiles for the checks the CLI does first). */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

export const SERVER_DEFAULTS = {
  threads: 1,
  concurrency: 2,
  maxBatch: 4,
  queue: 16,
  maxUploadBytes: 20 * 2 ** 20,
  maxPixels: 4096 * 4096,
  maxVoxels: 2 ** 26,
  volumeWorkers: 1,
  timeoutMs: 30_000,
} as const;

type Optional = 'weightsSource' | 'runner' | 'logger' | 'volume' | 'device' | 'apiKeys' | 'metricsOpen' | 'rateLimitPerMinute' | 'tls' | 'restart' | 'workerTestHooks';
type Resolved = Required<Omit<ServerOptions, Optional>> & Pick<ServerOptions, Optional>;

export const DEFAULT_WEIGHTS_WARNING = 'no weights file given: serving DEFAULT-INITIALISED (untrained, seed 0) weights; the masks are meaningless';

function resolve(o: ServerOptions): Resolved {
  const r: Resolved = { ...SERVER_DEFAULTS, imageConcurrency: Math.min(4, Math.max(2, availableParallelism())), ...definedOnly(o) } as Resolved;
  const int = (name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isInteger(v) || v < min || v > max) throw new UserError(`${name} must be an integer from ${min} to ${max}, got ${v}`);
  };
  int('threads', r.threads, 1, 256);
  int('concurrency', r.concurrency, 1, 64);
  int('max-batch', r.maxBatch, 1, 1024);
  int('queue', r.queue, 0, 100_000);
  int('max-upload bytes', r.maxUploadBytes, 1);
  int('max-pixels', r.maxPixels, 1, MAX_IMAGE_PIXELS);
  int('max-voxels', r.maxVoxels, 1, MAX_VOLUME_VOXELS);
  int('volume workers', r.volumeWorkers, 1, 64);
  int('timeout-ms', r.timeoutMs, 1, 24 * 3600_000);
  int('image concurrency', r.imageConcurrency, 1, 1024);
  if (r.rateLimitPerMinute !== undefined) int('rate-limit', r.rateLimitPerMinute, 0, 1_000_000);
  return r;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A counting semaphore: bounds images decoded or encoded at once (their full-size pixels are the big allocations). */
class Semaphore {
  private waiters: (() => void)[] = [];
  constructor(private free: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiters.push(r));
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      if (next) next();
      else this.free++;
    }
  }
}

interface RequestState {
  arrived: number;
  abort: AbortController;
}

interface Counters {
  ok: number;
  busy: number;
  timedOut: number;
  clientErrors: number;
  serverErrors: number;
  /** 503s of batches whose worker process died under them. */
  workerLost: number;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/**
 * The segmentation service (fastify): POST /v1/segment, GET /healthz, GET /v1/model. Not listening yet; call
 * `listen`. Closing it finishes in-flight requests, then stops the inference workers.
 *
 * Load model: a request takes a slot when its headers arrive (before its body is read) and holds it until its
 * response is sent. There are concurrency × maxBatch + queue slots; without a free one the answer is 503 with
 * Retry-After, at once. Bodies, decoded images and queued tensors are therefore bounded by the slot count.
 */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const o = resolve(options);
  const { model } = o;
  const { inChannels, size, classes } = model.options;
  // uploads are decoded as grey or RGB; a model with another input channel count could only get a wrong tensor
  if (inChannels !== 1 && inChannels !== 3)
    throw new UserError(`the model takes ${inChannels} input channels, but images are read as grey (1) or RGB (3); serve a model with 1 or 3 input channels`);
  // a request carries one volume: the model must take one volume channel (with its slice context)
  if (o.volume) checkVolumeModel(model.options, o.volume, o.weightsSource ?? 'the model', 1);
  const capacity = o.concurrency * o.maxBatch + o.queue;

  const serverOptions = { connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(o.timeoutMs / 4))), headersTimeout: Math.min(o.timeoutMs, 60_000) };
  // (the instance is typed as the HTTP one: an HTTPS server has the same API)
  const app = Fastify({
    logger: redacted(o.logger),
    // a random id per request, in every log line of the request (reqId) and in the X-Request-Id answer header
    genReqId: () => randomUUID(),
    bodyLimit: o.maxUploadBytes,
    // time to receive a whole request (headers and body); a slow client cannot hold a slot longer than this
    requestTimeout: o.timeoutMs,
    // (a TLS handshake gets at most 10 s, not Node's 120 s: a client that connects and stalls holds no more than that)
    ...(o.tls ? { https: { ...serverOptions, cert: o.tls.cert, key: o.tls.key, handshakeTimeout: Math.min(o.timeoutMs, 10_000) } } : { http: serverOptions }),
    logController: new LogController({ disableRequestLogging: true }), // one line per response, below
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    clientErrorHandler: (err, socket) => clientError(err as NodeJS.ErrnoException, socket, o.timeoutMs),
  } as FastifyServerOptions) as unknown as FastifyInstance;
  // idle or slow connections are cheap but not free: bound them too (Node closes connections beyond this at once)
  app.server.maxConnections = Math.max(256, 8 * capacity);
  closeQuietConnectionsOnClose(app);

  let runner = o.runner;
  let pool: WorkerPool | undefined;
  if (!runner) {
    pool = await WorkerPool.create(model, {
      workers: o.concurrency,
      session: { threads: o.threads, ...(o.device ? { device: o.device } : {}) },
      log: (level, message, err) => app.log[level](err ? { err } : {}, message),
      restart: o.restart,
      testHooks: o.workerTestHooks,
    });
    runner = pool;
  }
  // a WorkerPool given as the runner (tests) still shows its workers and restarts in /healthz and /metrics
  const workers = pool ?? (runner instanceof WorkerPool ? runner : undefined);
  const metrics = new ServiceMetrics(o.maxBatch, {
    restarts: () => ({ inference: workers?.restarts ?? 0, ...(volumes ? { volume: volumes.restarts } : {}) }),
    alive: () => ({ inference: workers ? workers.alive : o.concurrency, ...(volumes ? { volume: volumes.alive } : {}) }),
    inFlight: () => inflight,
    capacity,
    ...(o.apiKeys ? { keys: () => ({ count: o.apiKeys!.count, reloads: o.apiKeys!.reloads }) } : {}),
  });
  runner = observed(runner, metrics);
  const batcher = new Batcher(runner, { concurrency: o.concurrency, maxBatch: o.maxBatch, inputLength: inChannels * size * size, outputLength: classes * size * size });
  const images = new Semaphore(o.imageConcurrency);
  const planeIn = inChannels * size * size;
  const planeOut = classes * size * size;
  // a volume's slices join the same batches as images: each slice is one batcher entry
  const volumes = o.volume
    ? await VolumeWorkers.create(
        o.volumeWorkers,
        async (batch, n, signal) => {
          const parts = await Promise.all(Array.from({ length: n }, (_, i) => submit(batch.subarray(i * planeIn, (i + 1) * planeIn), signal)));
          const logits = new Float32Array(n * planeOut);
          parts.forEach((p, i) => logits.set(p.logits, i * planeOut));
          return logits;
        },
        (level, message, err) => app.log[level](err ? { err } : {}, message),
      ).catch(async (e: unknown) => {
        await pool?.close();
        throw e;
      })
    : undefined;
  /** One image (or volume slice) into the batcher; its wait for a batch goes to the metrics. */
  const submit = async (input: Float32Array, signal: AbortSignal) => {
    const r = await batcher.submit(input, signal);
    metrics.queueWait.observe(r.queueMs / 1000);
    return r;
  };
  const states = new WeakMap<FastifyRequest, RequestState>();
  const counters: Counters = { ok: 0, busy: 0, timedOut: 0, clientErrors: 0, serverErrors: 0, workerLost: 0 };
  let inflight = 0;
  const started = Date.now();

  /** Seconds until a slot is likely free: the backlog in batches times the recent batch time. */
  const retryAfter = () => {
    const { avgBatchMs } = batcher.stats;
    const rounds = Math.ceil(inflight / (o.concurrency * o.maxBatch));
    return String(Math.min(60, Math.max(1, Math.ceil((rounds * (avgBatchMs || 1000)) / 1000))));
  };

  app.addHook('onClose', async () => {
    await volumes?.close();
    await batcher.idle();
    await pool?.close();
  });

  /** The key (its SHA-256, hex) each authenticated request came with. */
  const keyIds = new WeakMap<FastifyRequest, string>();
  const open = (request: FastifyRequest) => request.routeOptions.url === '/healthz' || (o.metricsOpen === true && request.routeOptions.url === '/metrics');
  const limited = !!o.rateLimitPerMinute;
  if (limited) {
    await app.register(rateLimit, {
      global: false, // applied in the hook below, after authentication, so that it counts per key
      max: o.rateLimitPerMinute,
      timeWindow: 60_000,
      keyGenerator: (request) => keyIds.get(request) ?? request.ip,
      errorResponseBuilder: (_request, context) =>
        new HttpError(429, `rate limit exceeded: at most ${context.max} requests per minute${o.apiKeys ? ' per API key' : ' per client'}; retry in ${context.after}`),
    });
  }
  const limit = limited ? app.rateLimit() : undefined;
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
    if (open(request)) return;
    if (o.apiKeys) {
      const check = o.apiKeys.check(request.headers.authorization);
      if (!check.ok)
        throw new HttpError(
          401,
          check.reason === 'missing' ? 'missing API key: send the header "Authorization: Bearer <key>"' : 'unknown API key',
          { 'www-authenticate': check.reason === 'missing' ? `Bearer realm="${REALM}"` : `Bearer realm="${REALM}", error="invalid_token"` },
        );
      keyIds.set(request, check.id);
    }
    if (limit && request.routeOptions.url !== '/metrics') await limit.call(app, request, reply);
  });

  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: `not found: ${request.method} ${request.url.split('?')[0]}` });
  });

  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    const e = err as FastifyError;
    let status: number;
    let message: string;
    if (err instanceof HttpError) {
      if (err instanceof WorkerLostError) counters.workerLost++;
      void reply.headers(err.headers);
      [status, message] = [err.statusCode, err.message];
    } else if (err instanceof UserError) {
      [status, message] = [422, err.message];
    } else if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      [status, message] = [413, tooLarge(o.maxUploadBytes).message];
    } else if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      const ct = request.headers['content-type'];
      [status, message] = [
        415,
        o.volume
          ? `unsupported content type ${ct ? `"${ct}"` : '(none)'}; send multipart/form-data with the NIfTI file in the field "volume", or the raw .nii/.nii.gz with Content-Type ${[...VOLUME_CONTENT_TYPES, 'application/octet-stream'].join(', ')}`
          : `unsupported content type ${ct ? `"${ct}"` : '(none)'}; send multipart/form-data with the image in the field "${FIELD}", or the raw image with Content-Type ${RAW_CONTENT_TYPES.join(', ')}`,
      ];
    } else if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      [status, message] = [e.statusCode, e.message.split('\n')[0]!];
    } else {
      request.log.error({ err }, 'request failed');
      [status, message] = [500, 'internal server error'];
    }
    void reply.code(status).type('application/json; charset=utf-8').send({ error: message });
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const s = reply.statusCode;
    metrics.requests.inc({ route, method: request.method, status: String(s) });
    metrics.duration.observe({ route }, reply.elapsedTime / 1000);
    if (route !== '/v1/segment') return;
    if (s < 400) counters.ok++;
    else if (s < 500) counters.clientErrors++;
    else if (s !== 503) counters.serverErrors++; // 503s are counted as rejected_busy, timed_out or worker_lost
    // the route, never the query string (a client could put anything there); the key's label, never the key
    const key = keyIds.get(request);
    request.log.info({ status: s, ms: round(reply.elapsedTime), ...(key ? { key: keyLabel(key) } : {}) }, `${request.method} ${route}`);
  });

  app.get('/metrics', async (_request, reply) => {
    void reply.type(metrics.contentType);
    return metrics.text();
  });

  app.get('/healthz', async (_request, reply) => {
    const alive = workers ? workers.alive : o.concurrency;
    const b = batcher.stats;
    const volumesAlive = volumes ? volumes.alive : 1;
    const pool = workers?.health;
    void reply.code(alive > 0 && volumesAlive > 0 ? 200 : 503);
    return {
      status:
        alive === 0
          ? pool && pool.crash_looping > 0
            ? 'inference workers crash-looping'
            : 'no inference worker'
          : volumesAlive === 0
            ? 'no volume worker'
            : pool && pool.alive < pool.configured
              ? 'degraded'
              : 'ok',
      uptime_s: Math.round((Date.now() - started) / 1000),
      queue: { in_flight: inflight, waiting_for_model: b.waiting, running_batches: b.running, capacity },
      batches: { count: b.batches, images: b.images, max_size: b.maxBatchSize, avg_ms: round(b.avgBatchMs) },
      requests: {
        ok: counters.ok,
        rejected_busy: counters.busy,
        timed_out: counters.timedOut,
        worker_lost: counters.workerLost,
        client_errors: counters.clientErrors,
        server_errors: counters.serverErrors,
      },
      workers: pool ?? { alive, configured: o.concurrency, restarts: 0 },
      ...(volumes ? { volumes: { ...volumes.stats, workers: volumes.alive, restarts: volumes.restarts } } : {}),
      memory: { rss_mb: Math.round(process.memoryUsage.rss() / 2 ** 20) },
    };
  });

  app.get('/v1/model', async () => ({
    name: model.name,
    params: model.parameterCount,
    input_size: size,
    in_channels: inChannels,
    classes,
    input: o.volume ? 'volume' : 'image',
    class_names: o.volume?.classNames ?? null,
    volume: o.volume
      ? { formats: ['.nii', '.nii.gz'], intensity: o.volume.intensity, axis: o.volume.axis, slice_context: o.volume.context, class_values: o.volume.classValues, class_names: o.volume.classNames }
      : null,
    output: o.volume
      ? `label NIfTI (.nii.gz) on the input's grid, label values ${o.volume.classValues.join(', ')}`
      : classes === 1
        ? 'binary mask, 0 or 255'
        : `class index per pixel, 0 to ${classes - 1}`,
    weights: o.weightsSource ?? 'default-initialised (seed 0)',
    default_weights: o.weightsSource === undefined,
    ...(o.weightsSource === undefined ? { warning: DEFAULT_WEIGHTS_WARNING } : {}),
    limits: {
      max_upload_bytes: o.maxUploadBytes,
      max_pixels: o.maxPixels,
      max_voxels: o.maxVoxels,
      timeout_ms: o.timeoutMs,
      concurrency: o.concurrency,
      max_batch: o.maxBatch,
      queue: o.queue,
      capacity,
      threads_per_worker: o.threads,
      device: o.device ?? 'cpu',
    },
  }));

  await app.register(async (scope) => {
    // only the bodies this route understands; anything else is a 415 with a message
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser([...RAW_CONTENT_TYPES, ...VOLUME_CONTENT_TYPES], { parseAs: 'buffer', bodyLimit: o.maxUploadBytes }, (_request, body, done) => done(null, body));
    await scope.register(multipart, {
      limits: { fileSize: o.maxUploadBytes, files: 1, fields: 16, fieldSize: 64 * 1024, parts: 20, headerPairs: 100 },
      throwFileSizeLimit: true,
    });

    scope.addHook('onRequest', async (request, reply) => {
      if (inflight >= capacity) {
        counters.busy++;
        return reply
          .code(503)
          .header('retry-after', retryAfter())
          .send({ error: `server busy: ${inflight} requests in progress, the limit is ${capacity}; retry later` });
      }
      inflight++;
      const state: RequestState = { arrived: performance.now(), abort: new AbortController() };
      states.set(request, state);
      reply.raw.once('close', () => {
        inflight--;
        // the client went away or the response is out: nothing more to do for this request
        if (!reply.raw.writableFinished) state.abort.abort(new Error('client disconnected'));
      });
    });

    scope.post('/v1/segment', async (request, reply) => {
      const state = states.get(request)!;
      const work = segment(request, state);
      work.catch(() => {}); // its failure is reported below unless the deadline came first
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => {
            // still receiving the body (a slow multipart upload): the client's fault, and the connection must go
            const e = !request.raw.complete
              ? new HttpError(408, `request not received within ${o.timeoutMs} ms`, { connection: 'close' })
              : new HttpError(503, `request timed out after ${o.timeoutMs} ms; the server is busy, retry later`, { 'retry-after': retryAfter() });
            if (e.statusCode === 503) counters.timedOut++;
            state.abort.abort(e);
            reject(e);
          },
          Math.max(0, state.arrived + o.timeoutMs - performance.now()),
        );
      });
      try {
        const result = await Promise.race([work, deadline]);
        void reply.header(
          'server-timing',
          Object.entries(result.timing)
            .map(([k, v]) => `${k};dur=${v}`)
            .join(', '),
        );
        if (wantsJson(request, result.type)) return result.json();
        if (result.filename) void reply.header('content-disposition', `attachment; filename="${result.filename}"`);
        return reply.type(result.type).send(result.body);
      } finally {
        clearTimeout(timer);
      }
    });
  });

  interface Answer {
    body: Buffer;
    type: string;
    filename?: string;
    timing: Record<string, number>;
    json: () => object;
  }

  /**
   * A NIfTI body goes to the volume path, anything else (a DICOM image, read first) to the image path; each refuses
   * the other model kind.
   */
  async function segment(request: FastifyRequest, state: RequestState): Promise<Answer> {
    const bytes = await readUpload(request, o.maxUploadBytes);
    if (looksLikeDicom(bytes)) {
      if (volumes) throw notAVolume(bytes);
      return segmentImage(bytes, state, true);
    }
    if (looksLikeNifti(bytes)) {
      if (!volumes) throw notAVolumeModel();
      return segmentVolumeUpload(bytes, state, volumes);
    }
    if (volumes) throw notAVolume(bytes);
    return segmentImage(bytes, state);
  }

  async function segmentVolumeUpload(bytes: Buffer, state: RequestState, workers: VolumeWorkers): Promise<Answer> {
    const meta = o.volume!;
    const t0 = performance.now();
    checkVolumeHeader(bytes, o.maxVoxels); // before anything is inflated
    const headerMs = performance.now() - t0;
    const r = await workers.run(
      { bytes, source: VOLUME_SOURCE, maxVoxels: o.maxVoxels, meta, options: { size, classes, inChannels }, batch: o.concurrency * o.maxBatch },
      state.abort.signal,
    );
    const t = r.summary.timing;
    const timing = {
      decode: round(headerMs + t.decode),
      queue: round(r.queueMs),
      inference: round(t.inference),
      slicing: round(t.other),
      encode: round(t.encode),
      total: round(performance.now() - state.arrived),
    };
    const body = Buffer.from(r.nifti.buffer, r.nifti.byteOffset, r.nifti.byteLength);
    return {
      body,
      type: 'application/gzip',
      filename: 'labels.nii.gz',
      timing,
      json: () => volumeJson(model.name, meta, r.summary, r.nifti, timing, o.weightsSource === undefined ? DEFAULT_WEIGHTS_WARNING : undefined),
    };
  }

  async function segmentImage(bytes: Buffer, state: RequestState, dicom = false): Promise<Answer> {
    const signal = state.abort.signal;
    const t0 = performance.now();
    if (!dicom) await checkImageHeader(bytes, o.maxPixels);
    signal.throwIfAborted();
    let info: DicomInfo | undefined;
    const prepared = await images.run(async () => {
      signal.throwIfAborted();
      if (!dicom) return prepareImage(bytes, model.options, 'uploaded image');
      // the DICOM's 8-bit image (its size was checked against maxPixels from the header) goes the PNG way
      const d = await decodeDicomUpload(bytes, o.maxPixels);
      info = d.info;
      return prepareImage(d.png, model.options, 'uploaded DICOM');
    });
    const decodeMs = performance.now() - t0;
    const r = await submit(prepared.input, signal);
    const { width, height } = prepared;
    const png = await images.run(async () => {
      signal.throwIfAborted();
      const { mask } = await masksFromLogits(r.logits, model.options, width, height);
      return { mask, bytes: await encodePng(mask, width, height, 1) };
    });
    const timing = { decode: round(decodeMs), queue: round(r.queueMs), inference: round(r.inferenceMs), total: round(performance.now() - state.arrived) };
    return {
      body: png.bytes,
      type: 'image/png',
      timing,
      json: () => {
        const area = maskArea(png.mask, width, height);
        const spacing = info?.pixel_spacing_mm;
        return {
          model: model.name,
          width,
          height,
          mask_png_base64: png.bytes.toString('base64'),
          area_pixels: area.pixels,
          area_fraction: area.pixels / (width * height),
          bbox: area.bbox,
          ...(info ? { area_mm2: spacing ? +(area.pixels * spacing[0] * spacing[1]).toPrecision(12) : null, pixel_spacing_mm: spacing ?? null, dicom: info } : {}),
          timing_ms: timing,
          batch_size: r.batchSize,
          ...(o.weightsSource === undefined ? { warning: DEFAULT_WEIGHTS_WARNING } : {}),
        };
      },
    };
  }

  return app;
}

/** The runner, with each batch's size and run time going to the metrics. */
function observed(inner: BatchRunner, metrics: ServiceMetrics): BatchRunner {
  return {
    async logits(batch, n) {
      const t = performance.now();
      const logits = await inner.logits(batch, n);
      metrics.inference.observe((performance.now() - t) / 1000);
      metrics.batchSize.observe(n);
      return logits;
    },
  };
}

/** The logger options with the Authorization header redacted wherever a request's headers are logged. */
function redacted(logger: ServerOptions['logger']): FastifyServerOptions['logger'] {
  if (!logger) return false;
  const base = logger === true ? {} : logger;
  // (@fastify/multipart logs all request headers at trace level, as busboyOptions.headers)
  const paths = ['req.headers.authorization', 'headers.authorization', '*.headers.authorization', 'req.headers.cookie', 'headers.cookie', '*.headers.cookie', 'busboyOptions.headers'];
  return { ...base, redact: base.redact ?? { paths, censor: '[redacted]' } };
}

/** Errors below HTTP (slow or malformed requests): the same JSON shape as every other error, then close. */
function clientError(err: NodeJS.ErrnoException, socket: Duplex, timeoutMs: number): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, `request not received within ${timeoutMs} ms`]
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'request headers too large']
        : [400, 'malformed HTTP request'];
  const body = JSON.stringify({ error: message });
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  socket.destroy();
}

/**
 * On close, Node's server.close() ends keep-alive connections that are idle after a request, but not connections
 * that have not sent a request yet (HTTP clients open spare ones), so shutdown would wait for the client to drop
 * them. Close every connection without a request in progress, and each remaining one once its response is out.
 */
function closeQuietConnectionsOnClose(app: FastifyInstance): void {
  const requests = new Map<Socket, number>();
  let closing = false;
  const tls = app.server instanceof TlsServer;
  // over TLS the requests arrive on the TLS sockets, which 'secureConnection' gives (not the TCP ones under them)
  app.server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    requests.set(socket, 0);
    socket.once('close', () => requests.delete(socket));
  });
  // ...and a TCP connection still in (or not yet in) its TLS handshake would hold up the close until the handshake
  // timeout: remember them until their TLS socket exists (its _parent; without it, this is not done)
  const handshaking = new Set<Socket>();
  let linked = true;
  if (tls) {
    app.server.on('connection', (raw: Socket) => {
      handshaking.add(raw);
      raw.once('close', () => handshaking.delete(raw));
    });
    app.server.on('secureConnection', (socket: Socket) => {
      const parent = (socket as Socket & { _parent?: Socket })._parent;
      if (parent) handshaking.delete(parent);
      else linked = false;
    });
  }
  app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    requests.set(socket, (requests.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const left = (requests.get(socket) ?? 1) - 1;
      requests.set(socket, left);
      if (closing && left === 0) socket.destroySoon();
    });
  });
  app.addHook('preClose', async () => {
    closing = true;
    for (const [socket, n] of requests) if (n === 0) socket.destroySoon();
    if (linked) for (const raw of handshaking) raw.destroy();
  });
}

/** JSON when the client asks for application/json ahead of (or without) the other answer's type (image/png, application/gzip). */
function wantsJson(request: FastifyRequest, other: string): boolean {
  const accept = (request.headers.accept ?? '').toLowerCase();
  const json = accept.indexOf('application/json');
  if (json < 0) return false;
  const alternative = accept.indexOf(other);
  return alternative < 0 || json < alternative;
}

/** Foreground (non-zero) pixel count and bounding box of a label map. */
export function maskArea(mask: Uint8Array, width: number, height: number): { pixels: number; bbox: { x: number; y: number; width: number; height: number } | null } {
  let pixels = 0;
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (mask[row + x] === 0) continue;
      pixels++;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  return { pixels, bbox: pixels === 0 ? null : { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 } };
}
