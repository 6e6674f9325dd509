/**
 * The models a queue worker keeps loaded (src/cli/worker.ts), shared by the jobs that name the same one. With
 * `--concurrency > 1` jobs pick entries up and put them down concurrently, so:
 * - a job counts itself as a user of its entry synchronously, in the same tick that it finds (or creates) the entry:
 *   no eviction can pick an entry between a job finding it and using it;
 * - an eviction takes its victims out of the cache synchronously too, and only entries with no users: an entry is
 *   released by one eviction (or by releaseAll) only, once, and never while a job uses it;
 * - an error releasing an entry is reported (`onReleaseError`), never thrown into the job that happened to evict it
 *   (its outputs are written: its result stands).
 */

export interface ModelCacheOptions<S, V> {
  /** How many entries are kept; beyond that, the least recently used ones that no job uses are released. */
  size: number;
  /** The cache key of `spec` (may look at files: weights rewritten at the same path are a new key). */
  key: (spec: S) => Promise<string>;
  load: (spec: S) => Promise<V>;
  release: (value: V) => Promise<void>;
  /** An entry's release failed (it is out of the cache either way). */
  onReleaseError?: (e: unknown) => void;
}

interface Entry<V> {
  value: Promise<V>;
  /** Jobs using it now (counted before any await; it is released only when none is). */
  users: number;
  released: boolean;
}

export class ModelCache<S, V> {
  /** The Map's order is the recency order (an entry used is re-inserted at the end). */
  private readonly entries = new Map<string, Entry<V>>();

  constructor(private readonly o: ModelCacheOptions<S, V>) {}

  /** Entries loaded or loading now (tests). */
  get size(): number {
    return this.entries.size;
  }

  /** Runs `fn` with the value `spec` names (loaded once, then cached). */
  async use<T>(spec: S, fn: (value: V) => Promise<T>): Promise<T> {
    const key = await this.o.key(spec);
    // no await from here to `users++`
    let entry = this.entries.get(key);
    if (entry) this.entries.delete(key); // re-inserted below, as the most recent
    else {
      const created: Entry<V> = { value: this.o.load(spec), users: 0, released: false };
      // a failed load (a weights file not there yet) is tried again by the next job
      created.value.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
      entry = created;
    }
    this.entries.set(key, entry);
    entry.users++;
    try {
      return await fn(await entry.value);
    } finally {
      entry.users--;
      await this.evict();
    }
  }

  /** Releases every entry (when no job runs any more). */
  async releaseAll(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const entry of all) await this.release(entry);
  }

  private async evict(): Promise<void> {
    const victims: Entry<V>[] = [];
    // least recently used first; taken out of the Map before any await (deleting while iterating a Map is safe)
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.o.size) break;
      if (entry.users > 0) continue;
      this.entries.delete(key);
      victims.push(entry);
    }
    for (const entry of victims) await this.release(entry);
  }

  private async release(entry: Entry<V>): Promise<void> {
    if (entry.released) return;
    entry.released = true;
    let value: V;
    try {
      value = await entry.value;
    } catch {
      return; // never loaded: nothing to release
    }
    try {
      await this.o.release(value);
    } catch (e) {
      this.o.onReleaseError?.(e);
    }
  }
}
