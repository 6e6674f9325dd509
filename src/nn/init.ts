import type { Rng } from '../util/rng.ts';

/** A parameter initialiser: `size` values drawn from `rng`. */
export type Init = (rng: Rng, size: number) => Float32Array;

/** PyTorch's default for Conv/Linear weights and biases: kaiming_uniform(a=√5) reduces to U(-1/√fan_in, 1/√fan_in). */
export const uniformFanIn =
  (fanIn: number) =>
  (rng: Rng, size: number): Float32Array => {
    const bound = 1 / Math.sqrt(fanIn);
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = rng.uniform(-bound, bound);
    return out;
  };

export const filled =
  (value: number) =>
  (_rng: Rng, size: number): Float32Array =>
    new Float32Array(size).fill(value);

export const ones = filled(1);
export const zeros = filled(0);

/** N(0, std²) truncated to [lo, hi] by redrawing (timm's trunc_normal_ with absolute bounds). */
export const truncatedNormal =
  (std: number, lo = -2, hi = 2) =>
  (rng: Rng, size: number): Float32Array => {
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      let v = std * rng.normal();
      while (v < lo || v > hi) v = std * rng.normal();
      out[i] = v;
    }
    return out;
  };

/** N(0, std²). */
export const normal =
  (std: number) =>
  (rng: Rng, size: number): Float32Array => {
    const out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = std * rng.normal();
    return out;
  };
