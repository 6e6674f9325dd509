// Learning-rate schedules: plain functions of the optimizer step (0-based), fed to the graph's `lr` input.
// The training loop applies them with the original timing, afterStep (below): the lr of step i is f(max(0, i − 1)).

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

/**
 * The original protocol's timing (official main.py): the lr is set AFTER each optimizer step from the count of
 * completed steps, `optimizer.step(); lr = f(iter_num); iter_num += 1`, starting from the base rate. So steps 0
 * and 1 both run at f(0) and step i >= 1 runs at f(i − 1); f(total − 1) is never used. One rule for every
 * schedule: the lr of step i is f(max(0, i − 1)) (with a warm-up, steps 0 and 1 both run at its start).
 * @example const lr = afterStep(poly({ base: 0.01, total: 10 })); [lr(0), lr(1), lr(2)] // [0.01, 0.01, 0.01·0.9^0.9]
 */
export const afterStep =
  (f: Schedule): Schedule =>
  (step) =>
    f(Math.max(0, step - 1));
