// The seeded train/val split, without files (split.ts reads and writes split files), so the browser draws the same.
import { UserError } from '../errors.ts';
import { Rng } from '../util/rng.ts';

/** Deterministic train/val split: a seeded Fisher-Yates shuffle of the sorted ids, the first round(n·val) go to val. */
export function makeSplit(ids: readonly string[], valFraction: number, seed: number): { train: string[]; val: string[] } {
  if (!(valFraction > 0 && valFraction < 1)) throw new UserError(`--val must be between 0 and 1 (exclusive), got ${valFraction}`);
  const order = new Rng(seed).shuffle([...ids].sort());
  const nVal = Math.round(order.length * valFraction);
  if (nVal === 0 || nVal === order.length) throw new UserError(`--val ${valFraction} of ${order.length} images leaves an empty train or val set`);
  return { val: order.slice(0, nVal).sort(), train: order.slice(nVal).sort() };
}
