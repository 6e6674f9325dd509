// Tests that need data from ../shared (PyTorch fixtures, real datasets), which a checkout may lack: such a test
// runs when the data is there, fails under CI=true when it is missing (it must never pass by skipping), and
// elsewhere reports itself as skipped, with the reason, and warns on stderr.
import { describe, it, type TestFunction } from 'vitest';

/** CI=true (any value except empty, 0 and false, as CI services set it). */
export const isCI = !!process.env.CI && !['0', 'false'].includes(process.env.CI.toLowerCase());

export interface RequiredData {
  present: boolean;
  /** What is needed, e.g. "the PyTorch fixtures". */
  what: string;
  /** Why it is missing, naming the path and how to set it. */
  missing: string;
  /** The CI failure's reason, e.g. "a parity suite must not pass without its comparison". */
  ciReason: string;
}

const fail = (d: RequiredData) => () => {
  throw new Error(`${d.missing}; CI=true: ${d.ciReason}`);
};
const warnSkip = (d: RequiredData, name: string) => console.warn(`SKIPPED "${name}": ${d.missing} (under CI=true this is a failure)`);

/** A suite that needs `d`: one failing test under CI=true, one skipped test elsewhere, when `d` is missing. */
export function describeWith(d: RequiredData, name: string, fn: () => void): void {
  if (d.present) describe(name, fn);
  else if (isCI) describe(name, () => it(`has ${d.what}`, fail(d)));
  else {
    warnSkip(d, name);
    describe(name, () => it(`needs ${d.what}`, (ctx) => ctx.skip(d.missing)));
  }
}

/** One test that needs `d`, with the same rules as {@link describeWith}. */
export function itWith(d: RequiredData, name: string, fn: TestFunction, timeout?: number): void {
  if (d.present) it(name, fn, timeout);
  else if (isCI) it(name, fail(d));
  else {
    warnSkip(d, name);
    it(name, (ctx) => ctx.skip(d.missing));
  }
}
