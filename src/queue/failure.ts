/**
 * What becomes of a job a worker saw fail (BullMQ's Worker 'failed' event, emitted after the job was moved on):
 * BullMQ retries it only while it has attempts left (attemptsMade, already counting this one, below opts.attempts)
 * and its error is not an UnrecoverableError. A job that stalled more than the worker's maxStalledCount times (its
 * workers died, or stopped renewing its lock) fails with an UnrecoverableError, "job stalled more than allowable
 * limit", whatever attempts it has left.
 */

/** The fields of a BullMQ Job this looks at. */
export interface FailedJob {
  attemptsMade: number;
  opts: { attempts?: number };
}

/** BullMQ's reason for a job that stalled more than maxStalledCount times. */
export const STALLED_TOO_OFTEN = 'job stalled more than allowable limit';

export interface FailureOutcome {
  /** No further attempt: the job is in the failed set. */
  final: boolean;
  /** For the log line: "will retry (attempt 1 of 3)", "failed (attempt 3 of 3)", "failed, not retried (...)". */
  what: string;
}

export function failureOutcome(job: FailedJob, e: Error, maxStalledCount: number): FailureOutcome {
  const attempts = job.opts.attempts ?? 1;
  const attempt = `attempt ${job.attemptsMade} of ${attempts}`;
  if (e.name === 'UnrecoverableError') {
    const why = e.message === STALLED_TOO_OFTEN ? `it stalled more than ${maxStalledCount} times: its workers died or stopped renewing its lock` : 'an unrecoverable error';
    return { final: true, what: `failed, not retried (${attempt}; ${why})` };
  }
  if (job.attemptsMade >= attempts) return { final: true, what: `failed (${attempt})` };
  return { final: false, what: `will retry (${attempt})` };
}
