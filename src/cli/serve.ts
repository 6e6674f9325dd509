import { InvalidArgumentError, Option, type Command } from 'commander';
import { volumeMetaFrom } from '../data/volume/model-meta.ts';
import { UserError } from '../errors.ts';
import { readSafetensorsFile } from '../io/safetensors.ts';
import { buildServer, DEFAULT_WEIGHTS_WARNING, SERVER_DEFAULTS } from '../server/app.ts';
import { ApiKeys, isLoopback, keyFileWarning } from '../server/auth.ts';
import { readTlsFiles } from '../server/tls.ts';
import { addDeviceOption, deviceFromFlags, type DeviceFlags } from './device-option.ts';
import { addModelOptions, modelFromFlags, requireImageChannels, type ModelFlags } from './model-options.ts';
import { action, intOption } from './run.ts';
import { COMMAND_DESCRIPTIONS } from './descriptions.ts';

interface ServeFlags extends ModelFlags, DeviceFlags {
  port: number;
  host: string;
  threads: number;
  maxUploadMb: number;
  maxPixels: number;
  maxVoxels: number;
  timeoutMs: number;
  concurrency: number;
  queue: number;
  maxBatch: number;
  logLevel: string;
  apiKeys?: string;
  /** false with --no-auth */
  auth: boolean;
  rateLimit?: number;
  metricsOpen?: boolean;
  tlsCert?: string;
  tlsKey?: string;
}

const portOption = (value: string): number => {
  const n = intOption(0)(value);
  if (n > 65535) throw new InvalidArgumentError(`must be a port number from 0 to 65535, got ${n}.`);
  return n;
};

const megabytes = (value: string): number => {
  const n = Number(value);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(value) || !(n > 0) || n > 4096) throw new InvalidArgumentError(`"${value}" is not a size in MB (a number above 0, at most 4096).`);
  return n;
};

export function registerServe(program: Command): void {
  addDeviceOption(addModelOptions(
    program.command('serve')
      .description(COMMAND_DESCRIPTIONS.serve),
    { weights: true },
  ))
    .option('-p, --port <n>', 'TCP port (0: any free port)', portOption, 8080)
    .option('--host <address>', 'address to listen on; one other than loopback needs --api-keys (or --no-auth behind a proxy that authenticates)', '127.0.0.1')
    .option('--threads <n>', 'ONNX Runtime intra-op threads per inference worker', intOption(1), SERVER_DEFAULTS.threads)
    .option('--max-upload-mb <mb>', 'largest upload (raw body or multipart file), 413 above', megabytes, SERVER_DEFAULTS.maxUploadBytes / 2 ** 20)
    .option('--max-pixels <n>', 'largest image (width x height), read from the header before decoding, 422 above', intOption(1), SERVER_DEFAULTS.maxPixels)
    .option('--max-voxels <n>', 'volume models: largest NIfTI volume in voxels, read from the header before inflating, 422 above', intOption(1), SERVER_DEFAULTS.maxVoxels)
    .option('--timeout-ms <ms>', 'time limit of a request from its arrival (upload, queue, inference)', intOption(100), SERVER_DEFAULTS.timeoutMs)
    .option('--concurrency <n>', 'inference workers: batches run at the same time', intOption(1), SERVER_DEFAULTS.concurrency)
    .option('--queue <n>', 'requests that may wait beyond concurrency x max-batch; more are refused with 503 + Retry-After', intOption(0), SERVER_DEFAULTS.queue)
    .option('--max-batch <n>', 'images run together in one batch at most', intOption(1), SERVER_DEFAULTS.maxBatch)
    .addOption(new Option('--log-level <level>', 'log level (JSON lines on stdout)').choices(['fatal', 'error', 'warn', 'info', 'debug', 'silent']).default('info'))
    .option('--api-keys <file>', 'require "Authorization: Bearer <key>" with one of the keys in this file (one per line, # comments); SIGHUP re-reads it')
    .option('--no-auth', 'serve without API keys on a non-loopback --host (only behind a proxy that authenticates)')
    .option('--rate-limit <n>', 'requests per minute per API key (per client address without keys), 429 + Retry-After beyond (default: no limit)', intOption(1))
    .option('--metrics-open', 'GET /metrics without an API key (for a Prometheus scraper on a trusted network)')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (and intermediates); needs --tls-key')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert (unencrypted)')
    .action(
      action(async (flags: ServeFlags) => {
        // security options first: a refused or broken setup stops before the model is built
        if (flags.apiKeys && !flags.auth) throw new UserError('--api-keys and --no-auth contradict each other; give one of them');
        if (!!flags.tlsCert !== !!flags.tlsKey)
          throw new UserError(flags.tlsCert ? '--tls-cert needs --tls-key (the private key of the certificate)' : '--tls-key needs --tls-cert (the certificate of the key)');
        if (!flags.apiKeys && flags.auth && !isLoopback(flags.host))
          throw new UserError(
            `refusing to listen on ${flags.host} without API keys: it is not a loopback address, so anyone who can reach the port could use the service; pass --api-keys FILE (one key per line), or --no-auth to serve without keys (behind a proxy that authenticates)`,
          );
        const apiKeys = flags.apiKeys ? await ApiKeys.fromFile(flags.apiKeys) : undefined;
        const tls = flags.tlsCert ? await readTlsFiles(flags.tlsCert, flags.tlsKey!) : undefined;
        // first, on stderr (the log is not set up yet): a device that cannot run stops before the model is built
        const device = await deviceFromFlags(flags);
        const model = await modelFromFlags(flags);
        requireImageChannels(model, flags.weights);
        const volume = flags.weights ? volumeMetaFrom((await readSafetensorsFile(flags.weights)).metadata, flags.weights) : undefined;
        const app = await buildServer({
          model,
          volume,
          maxVoxels: flags.maxVoxels,
          weightsSource: flags.weights,
          threads: flags.threads,
          device,
          concurrency: flags.concurrency,
          queue: flags.queue,
          maxBatch: flags.maxBatch,
          maxUploadBytes: Math.round(flags.maxUploadMb * 2 ** 20),
          maxPixels: flags.maxPixels,
          timeoutMs: flags.timeoutMs,
          logger: { level: flags.logLevel },
          apiKeys,
          metricsOpen: flags.metricsOpen,
          rateLimitPerMinute: flags.rateLimit,
          tls: tls && { cert: tls.cert, key: tls.key },
        });
        if (!flags.weights) app.log.warn(`WARNING: ${DEFAULT_WEIGHTS_WARNING}; pass --weights best.safetensors`);
        // one line says who may use the service
        const rate = flags.rateLimit ? `, at most ${flags.rateLimit} requests per minute per ${apiKeys ? 'key' : 'client address'}` : '';
        if (apiKeys) {
          app.log.info(
            `auth: ${apiKeys.count} API key${apiKeys.count === 1 ? '' : 's'} from ${flags.apiKeys}${rate}; /healthz open, /metrics ${flags.metricsOpen ? 'open (--metrics-open)' : 'needs a key'}; SIGHUP re-reads the file`,
          );
          const warning = await keyFileWarning(flags.apiKeys!);
          if (warning) app.log.warn(`WARNING: ${warning}`);
          // rotation without a restart; a file that cannot be read keeps the keys loaded before
          process.on('SIGHUP', () => {
            apiKeys.reload().then(
              (n) => app.log.info(`SIGHUP: ${n} API key${n === 1 ? '' : 's'} from ${flags.apiKeys}`),
              (e: Error) => app.log.error(`SIGHUP: ${e.message}; keeping the ${apiKeys.count} API key${apiKeys.count === 1 ? '' : 's'} loaded before`),
            );
          });
        } else if (!flags.auth) app.log.warn(`auth: OFF (--no-auth): anyone who can reach ${flags.host} can use the service${rate}`);
        else app.log.info(`auth: none, loopback only (${flags.host}): requests need no key${rate}; pass --api-keys FILE to require keys (and to listen on another address)`);
        if (tls) {
          app.log.info(`tls: HTTPS with ${flags.tlsCert} (${tls.subject}), valid until ${tls.validTo.toISOString()}`);
          for (const w of tls.warnings) app.log.warn(`WARNING: ${w}`);
        } else app.log.info('tls: off, plain HTTP (--tls-cert and --tls-key serve HTTPS)');
        try {
          await app.listen({ host: flags.host, port: flags.port });
        } catch (e) {
          await app.close();
          const code = (e as NodeJS.ErrnoException).code;
          const why = code === 'EADDRINUSE' ? 'address already in use' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'no such local address' : (e as Error).message;
          throw new UserError(`cannot listen on ${flags.host}:${flags.port} (${why})`);
        }
        const o = model.options;
        app.log.info(
          `serving ${model.name} ${o.size}x${o.size}, ${o.inChannels} in, ${o.classes} out${volume ? ` (volumes: ${volume.classNames.join(', ')})` : ''}, weights ${flags.weights ?? 'DEFAULT-INITIALISED'}; ` +
            `${flags.concurrency} worker(s) x ${flags.threads} thread(s) on the ${device === 'webgpu' ? 'GPU (WebGPU)' : 'CPU'}, batches up to ${flags.maxBatch}, ${flags.concurrency * flags.maxBatch + flags.queue} requests at most`,
        );

        let stopping = false;
        // Forced stop: die by the signal's default action (the inference worker processes exit when their IPC
        // channel closes, abandoning the run they are in, if any; the volume worker threads go with the process).
        const die = (signal: NodeJS.Signals) => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          process.kill(process.pid, signal);
        };
        const stop = (signal: NodeJS.Signals) => {
          if (stopping) {
            console.error(`mobileutr: ${signal} again: stopping without waiting`); // sync: the process ends right after
            die(signal);
            return;
          }
          stopping = true;
          app.log.info(`${signal}: no new requests; finishing the ones in flight`);
          const force = setTimeout(() => {
            console.error(`mobileutr: requests still running ${flags.timeoutMs + 5000} ms after ${signal}; stopping without waiting`);
            die('SIGTERM');
          }, flags.timeoutMs + 5000);
          force.unref();
          app.close().then(
            () => {
              app.log.info('stopped');
              process.exit(0);
            },
            (e: Error) => {
              app.log.error({ err: e }, 'error while stopping');
              process.exit(1);
            },
          );
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      }),
    );
}
