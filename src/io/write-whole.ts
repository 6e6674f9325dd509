/**
 * Writing a file whole or not at all: the bytes go to `<path>.partial-<pid>-<random>` next to it, then a rename puts
 * them in place, so a reader (or a crash) never sees a half-written file. Used by `predict` for volumes and by the
 * queue worker for every output.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The marker in every temporary name: `<file>.partial-<pid>-<random>`. */
export const PARTIAL_MARK = '.partial-';

/** Temporary files being written now (removed by {@link removePartialOutputs}). */
const partial = new Set<string>();

/** Writes `data` to `path` through a temporary file and a rename; on failure the temporary file is removed and the error rethrown. */
export async function writeWhole(path: string, data: string | Uint8Array): Promise<void> {
  // pid and random: two processes (two machines, even) writing the same output never share a temporary file
  const tmp = `${path}${PARTIAL_MARK}${process.pid}-${randomBytes(4).toString('hex')}`;
  partial.add(tmp);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  } finally {
    partial.delete(tmp);
  }
}

/**
 * Removes the temporary files of writes still in flight, synchronously: for a SIGINT/SIGTERM handler, so that an
 * interrupted run leaves neither a half-written file nor its temporary behind.
 */
export function removePartialOutputs(): void {
  for (const tmp of partial) rmSync(tmp, { force: true });
  partial.clear();
}

/**
 * Removes temporary files that an earlier writer of `path` left behind (a process killed with SIGKILL cannot remove
 * its own). Call it only while no other process writes `path` (a queue job holds its lock); returns how many went.
 */
export async function removeStalePartials(path: string): Promise<number> {
  const prefix = `${basename(path)}${PARTIAL_MARK}`;
  const names = await readdir(dirname(path)).catch(() => [] as string[]);
  const stale = names.filter((n) => n.startsWith(prefix) && !partial.has(join(dirname(path), n)));
  await Promise.all(stale.map((n) => rm(join(dirname(path), n), { force: true })));
  return stale.length;
}
