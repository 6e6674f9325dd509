/** The arithmetic mean (NaN for no values). */
export const mean = (xs: readonly number[]): number => xs.reduce((a, x) => a + x, 0) / xs.length;

/** Sample standard deviation (n - 1), as the papers' "mean ± std" over splits; 0 for a single value. */
export const sampleStd = (xs: readonly number[]): number => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));
