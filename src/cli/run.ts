import { InvalidArgumentError } from 'commander';
import { UserError } from '../errors.ts';

/** Wraps a command action: user errors print one line and exit 1; nothing prints a stack trace unless MOBILEUTR_DEBUG is set. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      reportError(e);
      process.exit(1);
    }
  };
}

export function reportError(e: unknown): void {
  if (process.env.MOBILEUTR_DEBUG) console.error(e);
  if (e instanceof UserError) console.error(`mobileutr: error: ${e.message}`);
  else console.error(`mobileutr: internal error: ${(e as Error)?.message ?? String(e)} (set MOBILEUTR_DEBUG=1 for details)`);
}

/** Commander parser for integer options with a lower bound. */
export const intOption =
  (min: number) =>
  (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`"${value}" is not an integer.`);
    if (n < min) throw new InvalidArgumentError(`must be >= ${min}, got ${n}.`);
    return n;
  };

/** Commander parser for a number strictly between 0 and 1. */
export const fractionOption = (value: string): number => {
  const n = Number(value);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`must be a number between 0 and 1, got "${value}".`);
  return n;
};

/** Commander parser for a positive finite number. */
export const positiveOption = (value: string): number => {
  const n = Number(value);
  if (!(Number.isFinite(n) && n > 0)) throw new InvalidArgumentError(`must be a positive number, got "${value}".`);
  return n;
};
