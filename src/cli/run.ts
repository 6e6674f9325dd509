import { mkdir } from 'node:fs/promises';
import { InvalidArgumentError } from 'commander';
import { UserError } from '../errors.ts';
import { writeWhole } from '../io/write-whole.ts';

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

export const fsProblem = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException).code;
  const known: Record<string, string> = {
    ENOENT: 'its folder does not exist',
    EEXIST: 'a file is in the way',
    ENOTDIR: 'a file is in the way',
    EISDIR: 'is a folder',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
  };
  return (code && known[code]) ?? code ?? (e as Error).message;
};

/** Creates an output folder (and its parents); any failure is a one-line UserError naming it. */
export async function ensureOutputDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (e) {
    throw new UserError(`${path}: cannot create the output folder (${fsProblem(e)})`);
  }
}

/**
 * Writes an output file whole or not at all (temporary file + rename); any failure (no space, permissions, a folder
 * in the way) is a one-line UserError naming it.
 */
export async function writeOutput(path: string, data: string | Uint8Array): Promise<void> {
  try {
    await writeWhole(path, data);
  } catch (e) {
    throw new UserError(`${path}: cannot write (${fsProblem(e)})`);
  }
}

/**
 * Pairing problems of a dataset (image without mask, mask without image, duplicate ids) stop a command unless the
 * user asked to skip those files: the first one is named, with the count and where to see them all.
 */
export function reportPairing(root: string, problems: readonly string[], skip: boolean | undefined): void {
  if (problems.length === 0) return;
  if (skip) {
    for (const p of problems) console.warn(`warning: ${p} (skipped)`);
    return;
  }
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  throw new UserError(`${problems[0]}${more}; run "mobileutr check --data ${root}" to list every problem, or pass --skip-unpaired to leave these files out`);
}
