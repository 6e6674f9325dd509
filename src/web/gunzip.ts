// Bounded gunzip with the browser's DecompressionStream: the caller sees the start of the inflated stream, says
// how long the whole stream must be (or refuses it), and inflation stops as soon as the output passes that length.
// A gzip bomb therefore costs the size its own header declares, no more.

export const isGzip = (bytes: Uint8Array): boolean => bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;

export class InflateError extends Error {
  constructor(
    message: string,
    readonly kind: 'truncated' | 'too-long' | 'short',
  ) {
    super(message);
  }
}

/**
 * Inflates `bytes` (gzip) to exactly the length that `plan` returns for the first `headBytes` inflated bytes (fewer
 * when the whole stream is shorter). `plan` may throw to refuse the file before anything more is inflated. Output
 * beyond that length stops the stream (InflateError 'too-long'); a stream that ends early or breaks off is
 * 'short' or 'truncated'.
 */
export async function gunzipExact(bytes: Uint8Array, headBytes: number, plan: (head: Uint8Array) => number): Promise<Uint8Array> {
  const reader = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('gzip')).getReader();
  const head = new Uint8Array(headBytes);
  let headLength = 0;
  let out: Uint8Array | undefined;
  let length = 0;
  const start = (): Uint8Array => {
    const expected = plan(head.subarray(0, headLength));
    if (headLength > expected) throw new InflateError(`the data inflates to more than the ${expected} bytes the header declares`, 'too-long');
    const buffer = new Uint8Array(expected);
    buffer.set(head.subarray(0, headLength));
    length = headLength;
    return buffer;
  };
  try {
    for (;;) {
      let chunk: Uint8Array;
      try {
        const r = await reader.read();
        if (r.done) break;
        chunk = r.value;
      } catch (e) {
        throw new InflateError(`the gzip stream is truncated or corrupt (${(e as Error).message || 'inflate failed'}); was the file cut short while copying or downloading?`, 'truncated');
      }
      if (!out) {
        const take = Math.min(chunk.length, headBytes - headLength);
        head.set(chunk.subarray(0, take), headLength);
        headLength += take;
        if (headLength < headBytes) continue;
        out = start();
        chunk = chunk.subarray(take);
      }
      if (length + chunk.length > out.length) throw new InflateError(`the data inflates to more than the ${out.length} bytes the header declares; stopped there (header dimensions disagree with the data size, or a gzip bomb)`, 'too-long');
      out.set(chunk, length);
      length += chunk.length;
    }
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    throw e;
  }
  out ??= start();
  if (length < out.length) throw new InflateError(`the data inflates to ${length} bytes, but the header declares ${out.length}: truncated file, or header dimensions disagree with the data size`, 'short');
  return out;
}
