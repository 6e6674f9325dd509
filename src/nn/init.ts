import type { Rng } from '../util/rng.ts';

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
