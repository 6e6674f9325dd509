// Bit-for-bit comparison of named tensors. expect(a).toEqual(b) walks a typed array element by element and takes
// ~5 s per million floats; a MobileUtr state dict holds 1.4 million.

type Named = ReadonlyMap<string, ArrayBufferView>;

const bytesOf = (t: ArrayBufferView) => Buffer.from(t.buffer, t.byteOffset, t.byteLength);

/** The names whose tensors differ bit for bit between `actual` and `expected` (or are missing from `actual`), for those `include` keeps. */
export function differingTensors(actual: Named, expected: Named, include: (name: string) => boolean = () => true): string[] {
  const differing: string[] = [];
  for (const [name, want] of expected) {
    if (!include(name)) continue;
    const got = actual.get(name);
    if (!got || got.constructor !== want.constructor || !bytesOf(got).equals(bytesOf(want))) differing.push(name);
  }
  return differing;
}
