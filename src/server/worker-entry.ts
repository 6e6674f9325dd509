/**
 * URL of a worker-thread module next to `base`: the compiled `<name>.js` in the package, or in a source checkout
 * (running under tsx) the `<name>.mjs` shim that registers tsx first, since a worker starts without loader hooks.
 */
export function workerEntry(name: string, base: string): URL {
  return new URL(base.endsWith('.ts') ? `./${name}.mjs` : `./${name}.js`, base);
}
