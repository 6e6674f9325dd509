// `mobileutr queue submit|status|retry-failed|drain`: the job queue on Redis (BullMQ) that `mobileutr worker`s
// take segmentation jobs from. One job per image or volume case, with a deterministic id (see jobId), so that
// submitting the same inputs again adds nothing. Submitting (which reads models and images) is in queue-submit.ts,
// loaded only for `queue submit`: status and the others start fast.
import type { Command } from 'commander';
import { DEFAULT_REDIS_URL, shown } from '../queue/connection.ts';
import { DEFAULT_QUEUE } from '../queue/jobs.ts';
import { withQueue, type SegmentQueue } from '../queue/open.ts';
import { COMMAND_DESCRIPTIONS } from './descriptions.ts';
import { addModelOptions } from './model-options.ts';
import { formatDuration } from './progress.ts';
import { action, intOption } from './run.ts';
import type { SubmitFlags } from './queue-submit.ts';

export interface QueueFlags {
  redis: string;
  queue: string;
}

const addQueueOptions = (cmd: Command): Command =>
  cmd
    .option('--redis <url>', 'Redis URL (default $MOBILEUTR_REDIS_URL, else redis://127.0.0.1:6379)', DEFAULT_REDIS_URL)
    .option('--queue <name>', 'queue name', DEFAULT_QUEUE);

export interface QueueStatus {
  waiting: number;
  active: number;
  completed: number;
  failed: number;
  /** Failed attempts waiting for their retry (backoff). */
  delayed: number;
  /** Jobs finished per second over the last 5 minutes; null when fewer than two finished then. */
  throughput: number | null;
  /** Seconds until waiting, delayed and active jobs are done at that throughput; null without a throughput. */
  etaSeconds: number | null;
  /** The first failed jobs (at most 20): input, error, attempts made. */
  failures: { id: string; input: string; error: string; attempts: number }[];
}

/** Counts, recent throughput and ETA of a queue, and its first failures. */
async function queueStatus(queue: SegmentQueue): Promise<QueueStatus> {
  const c = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed');
  const waiting = (c.waiting ?? 0) + (c.prioritized ?? 0);
  const WINDOW_MS = 5 * 60_000;
  const now = Date.now();
  const recent = (await queue.getCompleted(0, 499)).map((j) => j.finishedOn ?? 0).filter((t) => t > now - WINDOW_MS);
  const span = recent.length >= 2 ? (now - Math.min(...recent)) / 1000 : 0;
  const throughput = span > 0 ? recent.length / span : null;
  const left = waiting + (c.delayed ?? 0) + (c.active ?? 0);
  const failures = (await queue.getFailed(0, 19)).map((j) => ({ id: j.id ?? '', input: j.data.inputs[0] ?? '', error: j.failedReason, attempts: j.attemptsMade }));
  return {
    waiting,
    active: c.active ?? 0,
    completed: c.completed ?? 0,
    failed: c.failed ?? 0,
    delayed: c.delayed ?? 0,
    throughput,
    etaSeconds: left === 0 ? 0 : throughput ? left / throughput : null,
    failures,
  };
}

function printStatus(s: QueueStatus, title: string): void {
  const row = (label: string, n: number, note = '') => console.log(`  ${label.padEnd(10)} ${String(n).padStart(8)}${note ? `  ${note}` : ''}`);
  console.log(title);
  row('waiting', s.waiting);
  row('active', s.active);
  row('delayed', s.delayed, s.delayed ? '(failed attempts waiting for their retry)' : '');
  row('completed', s.completed);
  row('failed', s.failed, s.failed ? '(after all their attempts; `mobileutr queue retry-failed` runs them again)' : '');
  const eta = s.etaSeconds === null ? 'unknown' : formatDuration(s.etaSeconds);
  console.log(`  throughput ${s.throughput === null ? 'none in the last 5 min' : `${s.throughput.toFixed(2)} jobs/s (last 5 min)`}, ETA ${eta}`);
  if (s.failures.length) {
    console.log(`failed jobs${s.failed > s.failures.length ? ` (first ${s.failures.length} of ${s.failed})` : ''}:`);
    for (const f of s.failures) console.log(`  ${f.error.includes(f.input) ? '' : `${f.input}: `}${f.error} (${f.attempts} attempt${f.attempts === 1 ? '' : 's'})`);
  }
}

export function registerQueue(program: Command): void {
  const queue = program.command('queue').description(COMMAND_DESCRIPTIONS.queue);

  addQueueOptions(addModelOptions(queue.command('submit').description('enqueue one job per image or volume case of --input (ids from path, content and options: submitting again adds nothing)'), { weights: true }))
    .requiredOption('-i, --input <path>', 'a folder (as predict takes), an image, a volume, or a list file (one path a line, relative to the list)')
    .requiredOption('-o, --out <dir>', 'output folder: every worker must see it (and the inputs and weights) at the same path')
    .option('--overlay', 'also write <name>_overlay.png (2-D images only)')
    .option('--prob', 'also write <name>_prob.png (volumes: <case>_prob.nii.gz)')
    .option('--batch <n>', 'volumes: slices per network run', intOption(1), 4)
    .option('--volume-index <n>', 'volumes: the volume of 4-D files to segment', intOption(0))
    .option('--attempts <n>', 'tries per job before it counts as failed (a corrupt file fails every time)', intOption(1), 3)
    .option('--backoff <ms>', 'wait before the first retry, doubled for each next one', intOption(0), 2000)
    .option('--json', 'print {"queue","added","existing"}')
    .action(action(async (flags: SubmitFlags) => (await import('./queue-submit.ts')).submit(flags)));

  addQueueOptions(queue.command('status').description('waiting, active, delayed, completed and failed jobs, throughput and ETA, the first failures'))
    .option('--json', 'print {"waiting","active","completed","failed","delayed","throughput","etaSeconds","failures"}')
    .action(
      action((flags: QueueFlags & { json?: boolean }) =>
        withQueue(flags, async (q, _client, url) => {
          const s = await queueStatus(q);
          if (flags.json) console.log(JSON.stringify(s));
          else printStatus(s, `queue "${q.name}" at ${shown(url)}`);
        }),
      ),
    );

  addQueueOptions(queue.command('retry-failed').description('move every failed job back to waiting, with its attempts anew'))
    .action(
      action((flags: QueueFlags) =>
        withQueue(flags, async (q) => {
          // job by job: BullMQ's bulk retryJobs keeps the attempts made, so a retried job would fail at its first error.
          // The jobs failed now, each once: one that fails again while this runs (workers are up) stays failed, rather
          // than being retried again and again
          const ids = await q.getRanges(['failed'], 0, -1);
          let n = 0;
          for (const id of ids) {
            const job = await q.getJob(id);
            // a job another client retried or removed at the same moment is no longer failed: skip it
            const ok = job ? await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }).then(() => true, () => false) : false;
            if (ok) n++;
          }
          console.log(`queue "${q.name}": ${n} failed job${n === 1 ? '' : 's'} moved back to waiting, with all their attempts`);
        }),
      ),
    );

  addQueueOptions(queue.command('drain').description('remove the jobs not started yet (waiting and delayed); jobs in progress finish'))
    .option('--all', 'also forget completed and failed jobs (the same inputs can then be submitted again)')
    .action(
      action((flags: QueueFlags & { all?: boolean }) =>
        withQueue(flags, async (q) => {
          const c = await q.getJobCounts('waiting', 'prioritized', 'delayed');
          const pending = Object.values(c).reduce((a, b) => a + b, 0);
          await q.drain(true);
          let forgotten = '';
          if (flags.all) {
            const completed = (await q.clean(0, 0, 'completed')).length;
            const failed = (await q.clean(0, 0, 'failed')).length;
            forgotten = `, ${completed} completed and ${failed} failed forgotten`;
          }
          console.log(`queue "${q.name}": ${pending} job${pending === 1 ? '' : 's'} not started removed${forgotten}`);
        }),
      ),
    );
}
