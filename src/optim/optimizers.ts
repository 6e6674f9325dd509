// Optimizers as graph emitters: each parameter's update is a few ONNX ops inside the training graph.
// Per-step scalars (learning rate, bias corrections) are graph inputs, so schedules never rebuild the graph.
import type { GraphBuilder } from '../ir/builder.ts';
import type { Value } from '../ir/types.ts';
import * as op from '../ops/index.ts';

/** What an optimizer needs to emit one parameter's update. */
export interface UpdateInputs {
  param: Value;
  grad: Value;
  /** One value per `stateSlots` entry, same shape as the parameter. */
  state: readonly Value[];
  /** The per-step scalar inputs, by `scalarNames`. */
  scalars: Readonly<Record<string, Value>>;
}

export interface Optimizer {
  readonly name: string;
  /** Per-parameter state tensors, named like PyTorch's optimizer state (`momentum_buffer`, `exp_avg`, ...). */
  readonly stateSlots: readonly string[];
  /** Names of the scalar graph inputs fed each step. */
  readonly scalarNames: readonly string[];
  /** The scalars for optimizer step `step` (1-based) at learning rate `lr`. */
  scalars(lr: number, step: number): Record<string, number>;
  /** Emits the update; returns the new parameter and new state (same order as stateSlots). */
  update(b: GraphBuilder, u: UpdateInputs): { param: Value; state: Value[] };
  /** Hyper-parameters, for checkpoints and logs. */
  readonly config: Readonly<Record<string, number | boolean | string>>;
}

const scalar = (b: GraphBuilder, v: number) => b.constant([v], []);

export interface SgdOptions {
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/**
 * torch.optim.SGD (dampening 0): d = g + wd·p; buf = momentum·buf + d (buf starts at 0, so the first step is buf = d);
 * p -= lr·(nesterov ? d + momentum·buf : buf).
 *
 * @example const opt = sgd({ momentum: 0.9, weightDecay: 1e-4 }); // the paper's optimizer
 */
export function sgd(o: SgdOptions = {}): Optimizer {
  const momentum = o.momentum ?? 0;
  const wd = o.weightDecay ?? 0;
  const nesterov = o.nesterov ?? false;
  if (nesterov && momentum <= 0) throw new Error('Nesterov momentum requires momentum > 0');
  return {
    name: 'sgd',
    stateSlots: momentum !== 0 ? ['momentum_buffer'] : [],
    scalarNames: ['lr'],
    scalars: (lr) => ({ lr }),
    config: { momentum, weightDecay: wd, nesterov },
    update(b, { param, grad, state, scalars }) {
      const d = wd !== 0 ? op.Add(b, grad, op.Mul(b, param, scalar(b, wd))) : grad;
      if (momentum === 0) return { param: op.Sub(b, param, op.Mul(b, d, scalars.lr!)), state: [] };
      const buf = op.Add(b, op.Mul(b, state[0]!, scalar(b, momentum)), d);
      const direction = nesterov ? op.Add(b, d, op.Mul(b, buf, scalar(b, momentum))) : buf;
      return { param: op.Sub(b, param, op.Mul(b, direction, scalars.lr!)), state: [buf] };
    },
  };
}

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/**
 * torch.optim.AdamW (amsgrad off): p *= 1 − lr·wd; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
 * p -= (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps).
 */
export function adamW(o: AdamWOptions = {}): Optimizer {
  const [beta1, beta2] = o.betas ?? [0.9, 0.999];
  const eps = o.eps ?? 1e-8;
  const wd = o.weightDecay ?? 1e-2;
  return {
    name: 'adamw',
    stateSlots: ['exp_avg', 'exp_avg_sq'],
    scalarNames: ['decay', 'step_size', 'bias_correction2_sqrt'],
    scalars: (lr, step) => ({
      decay: 1 - lr * wd,
      step_size: lr / (1 - beta1 ** step),
      bias_correction2_sqrt: Math.sqrt(1 - beta2 ** step),
    }),
    config: { beta1, beta2, eps, weightDecay: wd },
    update(b, { param, grad, state, scalars }) {
      const decayed = op.Mul(b, param, scalars.decay!);
      const m = op.Add(b, op.Mul(b, state[0]!, scalar(b, beta1)), op.Mul(b, grad, scalar(b, 1 - beta1)));
      const v = op.Add(b, op.Mul(b, state[1]!, scalar(b, beta2)), op.Mul(b, op.Mul(b, grad, grad), scalar(b, 1 - beta2)));
      const denom = op.Add(b, op.Div(b, op.Sqrt(b, v), scalars.bias_correction2_sqrt!), scalar(b, eps));
      return { param: op.Sub(b, decayed, op.Mul(b, op.Div(b, m, denom), scalars.step_size!)), state: [m, v] };
    },
  };
}
