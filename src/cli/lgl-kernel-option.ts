// --lgl-kernel N|auto: MobileUtr's LGL kernel (src/models/mobileutr/lgl-kernel.ts). `auto` only where the training
// masks are at hand (train); every other command takes a number, or the kernel stored in the weights.
import { InvalidArgumentError } from 'commander';
import { lglKernelProblem } from '../models/mobileutr/lgl-kernel.ts';

const parseKernel = (value: string): number => {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value)) throw new InvalidArgumentError(`must be an odd integer from 3 to 31${value.trim() === 'auto' ? ' (auto measures the training masks: train only)' : ''}, got "${value}".`);
  const problem = lglKernelProblem(n);
  if (problem) throw new InvalidArgumentError(`${problem.replace(/^lgl-kernel /, '')}.`);
  return n;
};

/** Commander parser of --lgl-kernel N (info, export, eval, predict, serve). */
export const lglKernelOption = (value: string): number => parseKernel(value);

/** Commander parser of train's --lgl-kernel N|auto. */
export const lglKernelOrAutoOption = (value: string): number | 'auto' => (value.trim() === 'auto' ? 'auto' : parseKernel(value));

export const LGL_KERNEL_HELP = "MobileUtr's LGL kernel: the depthwise kernel of the bottleneck's LocalAgg, an odd integer 3..31 (default 9 as the official code, or from the weights file)";
