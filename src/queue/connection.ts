/**
 * Connections to Redis for the job queue (BullMQ on ioredis). Every problem a user can cause (a malformed URL, no
 * server there, a wrong password) is a one-line UserError; the message shows the URL without its password.
 */
import { Redis } from 'ioredis';
import { UserError } from '../errors.ts';

/** The URL `--redis` takes when not given: $MOBILEUTR_REDIS_URL, else a local server. */
export const DEFAULT_REDIS_URL = process.env.MOBILEUTR_REDIS_URL || 'redis://127.0.0.1:6379';

/** Checks a `--redis` value: redis:// or rediss:// (TLS), a host, an optional port and database number. */
export function parseRedisUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UserError(`--redis "${text}": not a URL; expected redis://[user:password@]host[:port][/db] (rediss:// for TLS)`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw new UserError(`--redis "${shown(url)}": the scheme must be redis:// or rediss:// (TLS), not ${url.protocol}//`);
  if (!url.hostname) throw new UserError(`--redis "${shown(url)}": no host; expected redis://host[:port][/db]`);
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d+$/.test(url.pathname))
    throw new UserError(`--redis "${shown(url)}": the path must be a database number (/0, /1, ...), not ${url.pathname}`);
  return url;
}

/** The URL as it may be printed: the password replaced by ***. */
export function shown(url: URL): string {
  if (!url.password) return url.href.replace(/\/$/, '');
  const copy = new URL(url.href);
  copy.password = '***';
  return copy.href.replace(/\/$/, '');
}

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const known: Record<string, string> = {
    ECONNREFUSED: 'connection refused: is redis-server running there?',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host name lookup failed',
    ETIMEDOUT: 'timed out',
    EHOSTUNREACH: 'host unreachable',
    ECONNRESET: 'the connection was reset',
  };
  if (err?.code && known[err.code]) return known[err.code]!;
  const msg = String(err?.message ?? e);
  if (/WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(msg)) return `authentication failed (${msg.split('\n')[0]})`;
  return msg.split('\n')[0]!;
}

export interface RedisConnectOptions {
  /**
   * A worker's connection: after the first successful connection it reconnects for ever (a Redis restart must not
   * stop the workers), and commands wait for the reconnection (BullMQ needs maxRetriesPerRequest: null).
   * Otherwise (submit, status, ...) a lost connection fails the command at once.
   */
  reconnect?: boolean;
  /** How long the first connection may take (default 5 s). */
  connectTimeoutMs?: number;
}

/**
 * Connects to the Redis at `text` and checks it answers (PING). Fails fast with a one-line UserError when it cannot:
 * a command should not hang on a wrong URL.
 */
export async function connectRedis(text: string, o: RedisConnectOptions = {}): Promise<{ client: Redis; url: URL }> {
  const url = parseRedisUrl(text);
  let connected = false;
  const client = new Redis(url.href, {
    lazyConnect: true,
    connectTimeout: o.connectTimeoutMs ?? 5000,
    maxRetriesPerRequest: o.reconnect ? null : 1,
    // before the first connection: no retries (fail fast); a worker then retries for ever, at most every 2 s
    retryStrategy: (times) => (connected && o.reconnect ? Math.min(100 * times, 2000) : null),
  });
  let lastError: unknown;
  // without a listener ioredis prints every connection error with its stack
  client.on('error', (e) => (lastError = e));
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    client.disconnect();
    throw new UserError(`cannot reach Redis at ${shown(url)}: ${reason(lastError ?? e)}`);
  }
  connected = true;
  return { client, url };
}

/** A one-line description of a failure while talking to Redis (after the connection was made). */
export function redisProblem(url: URL, e: unknown): UserError {
  return new UserError(`lost the connection to Redis at ${shown(url)}: ${reason(e)}`);
}
