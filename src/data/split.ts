import { readFile, stat, writeFile } from 'node:fs/promises';
import { UserError } from '../errors.ts';
import { Rng } from '../util/rng.ts';

/** Split files list ids, one per line: 16 MiB is far beyond any real dataset. */
const MAX_SPLIT_BYTES = 16 * 2 ** 20;

/** Deterministic train/val split: a seeded Fisher-Yates shuffle of the sorted ids, the first round(n·val) go to val. */
export function makeSplit(ids: readonly string[], valFraction: number, seed: number): { train: string[]; val: string[] } {
  if (!(valFraction > 0 && valFraction < 1)) throw new UserError(`--val must be between 0 and 1 (exclusive), got ${valFraction}`);
  const order = new Rng(seed).shuffle([...ids].sort());
  const nVal = Math.round(order.length * valFraction);
  if (nVal === 0 || nVal === order.length) throw new UserError(`--val ${valFraction} of ${order.length} images leaves an empty train or val set`);
  return { val: order.slice(0, nVal).sort(), train: order.slice(nVal).sort() };
}

/** Reads a split file (one id per line; blank lines and # comments ignored). Unknown or repeated ids are UserErrors. */
export async function readSplitFile(path: string, known: readonly string[]): Promise<string[]> {
  let text: string;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new UserError(`${path}: not a regular file`);
    if (info.size > MAX_SPLIT_BYTES) throw new UserError(`${path}: ${info.size} bytes is too large for a split file (limit ${MAX_SPLIT_BYTES})`);
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${path}: ${code === 'ENOENT' ? 'split file not found' : `cannot read split file (${code})`}`);
  }
  const knownSet = new Set(known);
  const seen = new Set<string>();
  const ids: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    // split files written by other tools may name files (benign_001.png) rather than ids
    const id = knownSet.has(line) ? line : line.replace(/\.[A-Za-z]+$/, '');
    if (!knownSet.has(id)) throw new UserError(`${path}:${i + 1}: "${line.slice(0, 80)}" is not an id of the dataset`);
    if (seen.has(id)) throw new UserError(`${path}:${i + 1}: id "${id}" is listed twice`);
    seen.add(id);
    ids.push(id);
  });
  if (ids.length === 0) throw new UserError(`${path}: split file lists no ids`);
  return ids;
}

export async function writeSplitFile(path: string, ids: readonly string[]): Promise<void> {
  await writeFile(path, `${ids.join('\n')}\n`);
}
