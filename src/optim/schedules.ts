// Learning-rate schedules: plain functions of the optimizer step (0-based), fed to the graph's `lr` input.

/** lr at step `step` (0-based). */
export type Schedule = (step: number) => number;

export interface ScheduleOptions {
  /** Peak learning rate. */
  base: number;
  /** Total optimizer steps of the run (the paper: epochs × iterations per epoch). */
  total: number;
  /** Linear warm-up steps from `warmupStart`·base up to base (default 0). */
  warmup?: number;
  /** Fraction of base the warm-up starts from (default 0). */
  warmupStart?: number;
}

function withWarmup(o: ScheduleOptions, after: (progress: number) => number): Schedule {
  const warmup = o.warmup ?? 0;
  const start = o.warmupStart ?? 0;
  if (!(o.total > 0) || warmup < 0 || warmup > o.total) throw new Error(`invalid schedule: total ${o.total}, warmup ${warmup}`);
  return (step) => {
    if (step < warmup) return o.base * (start + ((1 - start) * step) / warmup);
    const span = o.total - warmup;
    const progress = span > 0 ? Math.min(Math.max((step - warmup) / span, 0), 1) : 1;
    return after(progress);
  };
}

/**
 * The paper's poly schedule lr = base·(1 − step/total)^power (power 0.9), after an optional linear warm-up.
 * @example const lr = poly({ base: 0.01, total: 300 * 57 }); lr(0) // 0.01
 */
export const poly = (o: ScheduleOptions & { power?: number }): Schedule =>
  withWarmup(o, (p) => o.base * (1 - p) ** (o.power ?? 0.9));

/** Cosine annealing from base to `min` (default 0) after an optional linear warm-up. */
export const cosine = (o: ScheduleOptions & { min?: number }): Schedule =>
  withWarmup(o, (p) => (o.min ?? 0) + ((o.base - (o.min ?? 0)) * (1 + Math.cos(Math.PI * p))) / 2);

/** A constant rate after an optional linear warm-up. */
export const constant = (o: ScheduleOptions): Schedule => withWarmup(o, () => o.base);
