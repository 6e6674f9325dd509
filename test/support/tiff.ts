/**
 * A minimal TIFF writer for the tests: uncompressed, one strip, exactly the tags asked for. Encoders such as sharp
 * write a photometric tag that agrees with the samples; this one can write a file whose tag says grey
 * (min-is-black) over 3 samples per pixel, as some public endoscopy datasets ship.
 */

export interface TiffSpec {
  width: number;
  height: number;
  /** Samples per pixel (interleaved, PlanarConfiguration 1). */
  samples: number;
  bits: 8 | 16;
  /** PhotometricInterpretation: 0 min-is-white, 1 min-is-black, 2 RGB. */
  photometric: number;
  /** The ExtraSamples tag's values (absent when undefined). */
  extraSamples?: number[];
  /** width · height · samples values, pixel by pixel. */
  data: ArrayLike<number>;
  bigEndian?: boolean;
}

export function writeTiff(t: TiffSpec): Uint8Array {
  const le = !t.bigEndian;
  const bytesPerSample = t.bits / 8;
  const stripBytes = t.width * t.height * t.samples * bytesPerSample;
  if (t.data.length !== t.width * t.height * t.samples) throw new Error('writeTiff: data length');
  // tag, type (3 SHORT, 4 LONG), values; ascending tag order as TIFF requires
  const entries: [number, 3 | 4, number[]][] = [
    [256, 4, [t.width]],
    [257, 4, [t.height]],
    [258, 3, Array.from({ length: t.samples }, () => t.bits)],
    [259, 3, [1]],
    [262, 3, [t.photometric]],
    [273, 4, [0]], // strip offset, set below
    [277, 3, [t.samples]],
    [278, 4, [t.height]],
    [279, 4, [stripBytes]],
    [284, 3, [1]],
  ];
  if (t.extraSamples) entries.push([338, 3, t.extraSamples]);
  const ifdBytes = 2 + entries.length * 12 + 4;
  const outOfLine = entries.map(([, type, v]) => (v.length * (type === 3 ? 2 : 4) > 4 ? v.length * (type === 3 ? 2 : 4) : 0));
  const extraStart = 8 + ifdBytes;
  const dataStart = extraStart + outOfLine.reduce((a, b) => a + b, 0);
  entries.find((e) => e[0] === 273)![2] = [dataStart];
  const out = new Uint8Array(dataStart + stripBytes);
  const view = new DataView(out.buffer);
  out.set(le ? [0x49, 0x49] : [0x4d, 0x4d]);
  view.setUint16(2, 42, le);
  view.setUint32(4, 8, le);
  view.setUint16(8, entries.length, le);
  let extra = extraStart;
  entries.forEach(([tag, type, values], i) => {
    const e = 10 + i * 12;
    view.setUint16(e, tag, le);
    view.setUint16(e + 2, type, le);
    view.setUint32(e + 4, values.length, le);
    let at = e + 8;
    if (outOfLine[i]) {
      view.setUint32(at, extra, le);
      at = extra;
      extra += outOfLine[i]!;
    }
    for (const v of values) {
      if (type === 3) view.setUint16(at, v, le);
      else view.setUint32(at, v, le);
      at += type === 3 ? 2 : 4;
    }
  });
  view.setUint32(10 + entries.length * 12, 0, le); // no next IFD
  for (let i = 0; i < t.data.length; i++)
    if (t.bits === 8) out[dataStart + i] = t.data[i]!;
    else view.setUint16(dataStart + 2 * i, t.data[i]!, le);
  return out;
}

/** Rewrites the PhotometricInterpretation of a TIFF's first IFD in place (for files written by sharp). */
export function setPhotometric(tiff: Uint8Array, value: number): Uint8Array {
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const le = tiff[0] === 0x49;
  const ifd = view.getUint32(4, le);
  for (let i = 0; i < view.getUint16(ifd, le); i++) {
    const e = ifd + 2 + i * 12;
    if (view.getUint16(e, le) === 262) {
      view.setUint16(e + 8, value, le);
      return tiff;
    }
  }
  throw new Error('setPhotometric: no PhotometricInterpretation tag');
}
