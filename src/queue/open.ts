import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { UserError } from '../errors.ts';
import { connectRedis, redisProblem } from './connection.ts';
import { checkQueueName, type SegmentJob, type SegmentResult } from './jobs.ts';

export type SegmentQueue = Queue<SegmentJob, SegmentResult>;

/**
 * Runs `fn` with the queue: connects first (a one-line error when Redis is not there), and turns a connection lost
 * on the way into a one-line error too. Closes everything afterwards.
 */
export async function withQueue<T>(flags: { redis: string; queue: string }, fn: (queue: SegmentQueue, client: Redis, url: URL) => Promise<T>): Promise<T> {
  const name = checkQueueName(flags.queue);
  const { client, url } = await connectRedis(flags.redis);
  const queue: SegmentQueue = new Queue(name, { connection: client });
  queue.on('error', () => undefined); // a lost connection is reported by the failing command below
  try {
    return await fn(queue, client, url);
  } catch (e) {
    if (e instanceof UserError || client.status === 'ready') throw e;
    throw redisProblem(url, e);
  } finally {
    await queue.close().catch(() => undefined);
    client.disconnect();
  }
}

