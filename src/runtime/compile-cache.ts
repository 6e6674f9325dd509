/**
 * ONNX Runtime's graph optimizations take ~4 of the ~5 s it needs to open a MobileUtr training graph (ORT 1.30,
 * 2-core EPYC; an inference graph opens in 0.1 s); the optimized graph it can write out opens in ~1 s. This cache
 * keeps those optimized graphs on disk so that a resumed run, the next split of a comparison or the next command
 * starts in a second, with the same results bit for bit. It is off unless MOBILEUTR_CACHE_DIR names a folder: a
 * reloaded optimized graph runs its nodes in another order, and a MobileUtr step at 256x256, batch 8 then peaks at
 * 3.05 GB instead of 2.49 GB. Entries are keyed by the graph's bytes, ORT's version, the optimization level and
 * this machine's CPU: level 'all' writes layouts for the CPU it ran on. Whatever goes wrong here (an unwritable
 * folder, a damaged entry) costs only the time the cache would have saved.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import { arch, cpus } from 'node:os';
import { join } from 'node:path';

/** Least recently used entries go once the folder holds more than this. */
const MAX_CACHE_BYTES = 256 * 1024 * 1024;
const ENTRY_SUFFIX = '.ort-optimized.onnx';

/** The cache folder MOBILEUTR_CACHE_DIR names; undefined (no cache) when it is unset, empty or `off`. */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const chosen = env.MOBILEUTR_CACHE_DIR?.trim();
  return chosen && chosen !== 'off' ? chosen : undefined;
}

export interface CacheEntry {
  /** Where the optimized graph is (or will be) kept. */
  path: string;
  /** True when it is already there. */
  hit: boolean;
  /** Where ORT writes the optimized graph on a miss. */
  tempPath: string;
  /** Moves the optimized graph ORT wrote to `tempPath` into place (if that fails, nothing is left behind). */
  commit(): void;
  /** Removes whatever ORT left at `tempPath` (it failed). */
  abandon(): void;
  /** Removes the entry (it could not be loaded). */
  discard(): void;
}

/** The entry for a graph, or undefined when the cache is off or its folder cannot be made. */
export function compileCacheEntry(model: Uint8Array, key: { ortVersion: string; optimization: string }, dir = compileCacheDir()): CacheEntry | undefined {
  if (!dir) return undefined;
  try {
    mkdirSync(dir, { recursive: true });
  } catch {
    return undefined;
  }
  const hash = createHash('sha256').update(JSON.stringify({ ...key, arch: arch(), cpu: cpus()[0]?.model ?? '' })).update(model).digest('hex');
  const path = join(dir, `${hash.slice(0, 40)}${ENTRY_SUFFIX}`);
  const tempPath = join(dir, `.${hash.slice(0, 16)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let hit: boolean;
  try {
    const now = new Date();
    utimesSync(path, now, now); // marks it recently used
    hit = true;
  } catch {
    hit = false;
  }
  return {
    path,
    hit,
    tempPath,
    commit() {
      try {
        renameSync(tempPath, path);
        prune(dir);
      } catch {
        removeQuietly(tempPath);
      }
    },
    abandon() {
      removeQuietly(tempPath);
    },
    discard() {
      removeQuietly(path);
    },
  };
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** Deletes the least recently used entries until the folder is under `maxBytes`. */
export function prune(dir: string, maxBytes = MAX_CACHE_BYTES): void {
  const entries = readdirSync(dir)
    .filter((name) => name.endsWith(ENTRY_SUFFIX))
    .flatMap((name) => {
      try {
        const s = statSync(join(dir, name));
        return [{ path: join(dir, name), bytes: s.size, used: s.mtimeMs }];
      } catch {
        return [];
      }
    })
    .sort((a, b) => b.used - a.used);
  let total = 0;
  for (const e of entries) {
    total += e.bytes;
    if (total > maxBytes) removeQuietly(e.path);
  }
}
