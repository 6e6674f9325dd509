/**
 * Prometheus metrics of the HTTP service (prom-client), served as text at GET /metrics. Each server has its own
 * registry (tests start several servers in one process); the process metrics (RSS, CPU, heap, event loop lag, GC:
 * prom-client's default metrics) are collected once per process and appended.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

let processRegistry: Registry | undefined;

/** prom-client's default process metrics, registered once per process. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** Seconds, from 1 ms to 2 min. */
const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export interface MetricSources {
  /** Inference and volume workers replaced after they died, so far. */
  restarts: () => { inference: number; volume?: number };
  /** Workers ready now. */
  alive: () => { inference: number; volume?: number };
  /** Requests holding a slot now, and the slot count. */
  inFlight: () => number;
  capacity: number;
  /** API keys loaded and key-file reloads (absent without keys). */
  keys?: () => { count: number; reloads: { ok: number; failed: number } };
}

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly duration: Histogram<'route'>;
  readonly queueWait: Histogram;
  readonly inference: Histogram;
  readonly batchSize: Histogram;

  constructor(maxBatch: number, s: MetricSources) {
    processMetrics(); // from now on (GC and event loop observers start here)
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'mobileutr_http_requests_total',
      help: 'HTTP requests answered, by route (the route pattern; "unmatched" for unknown paths), method and status code',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'mobileutr_http_request_duration_seconds',
      help: 'Time from the arrival of a request to its answer, by route (for POST /v1/segment: upload, queue, inference, encoding)',
      labelNames: ['route'],
      buckets: SECONDS,
      registers,
    });
    this.queueWait = new Histogram({
      name: 'mobileutr_queue_wait_seconds',
      help: 'Time an image (or a volume slice) waited for its batch to start',
      buckets: SECONDS,
      registers,
    });
    this.inference = new Histogram({
      name: 'mobileutr_inference_seconds',
      help: 'Time of one batch run in an inference worker',
      buckets: SECONDS,
      registers,
    });
    const sizes: number[] = [];
    for (let b = 1; b <= maxBatch; b = b < 8 ? b + 1 : b * 2) sizes.push(b);
    if (sizes.at(-1) !== maxBatch) sizes.push(maxBatch);
    this.batchSize = new Histogram({ name: 'mobileutr_batch_size', help: 'Images (or volume slices) per batch run', buckets: sizes, registers });

    const kinds = (v: { inference: number; volume?: number }) => Object.entries(v).filter((e): e is [string, number] => e[1] !== undefined);
    const seen: Record<string, number> = {};
    new Counter({
      name: 'mobileutr_worker_restarts_total',
      help: 'Workers started again after they died, by kind (inference, volume)',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const [kind, n] of kinds(s.restarts())) {
          this.inc({ kind }, Math.max(0, n - (seen[kind] ?? 0)));
          seen[kind] = Math.max(n, seen[kind] ?? 0);
        }
      },
    });
    new Gauge({
      name: 'mobileutr_workers_alive',
      help: 'Workers ready to run, by kind (inference, volume)',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const [kind, n] of kinds(s.alive())) this.set({ kind }, n);
      },
    });
    new Gauge({
      name: 'mobileutr_requests_in_flight',
      help: 'Requests to POST /v1/segment holding a slot (receiving, waiting, running or being answered)',
      registers,
      collect() {
        this.set(s.inFlight());
      },
    });
    new Gauge({ name: 'mobileutr_request_capacity', help: 'Slots for requests to POST /v1/segment; beyond them the answer is 503', registers }).set(s.capacity);
    if (s.keys) {
      const keys = s.keys;
      new Gauge({
        name: 'mobileutr_api_keys',
        help: 'API keys accepted now',
        registers,
        collect() {
          this.set(keys().count);
        },
      });
      const reloadsSeen = { ok: 0, failed: 0 };
      new Counter({
        name: 'mobileutr_api_key_reloads_total',
        help: 'Re-reads of the API key file (SIGHUP), by result; a failed one keeps the previous keys',
        labelNames: ['result'],
        registers,
        collect() {
          const r = keys().reloads;
          for (const result of ['ok', 'failed'] as const) {
            this.inc({ result }, Math.max(0, r[result] - reloadsSeen[result]));
            reloadsSeen[result] = Math.max(r[result], reloadsSeen[result]);
          }
        },
      });
    }
  }

  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;

  /** The service's metrics and the process's, in the Prometheus text format. */
  async text(): Promise<string> {
    const [own, proc] = await Promise.all([this.registry.metrics(), processMetrics().metrics()]);
    return `${own.trimEnd()}\n${proc.trimEnd()}\n`;
  }
}
