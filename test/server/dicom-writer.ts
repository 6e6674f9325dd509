// A minimal DICOM Part-10 writer (Explicit VR Little Endian) for what test/support/dicom.ts does not write:
// colour images, sequences, multi-frame files, patient tags.
const LONG = new Set(['OB', 'OW', 'SQ', 'UN', 'UT']);
export function el(group: number, element: number, vr: string, value: Uint8Array): Buffer {
  const v = value.length % 2 ? Buffer.concat([value, Buffer.from([vr === 'UI' || vr === 'OB' ? 0 : 0x20])]) : Buffer.from(value);
  const head = Buffer.alloc(LONG.has(vr) ? 12 : 8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(element, 2);
  head.write(vr, 4, 'latin1');
  if (LONG.has(vr)) head.writeUInt32LE(v.length, 8);
  else head.writeUInt16LE(v.length, 6);
  return Buffer.concat([head, v]);
}
export const str = (s: string) => Buffer.from(s, 'latin1');
export const u16 = (...n: number[]) => Buffer.from(new Uint16Array(n).buffer);
const f64 = (n: number) => Buffer.from(new Float64Array([n]).buffer);
function item(content: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt16LE(0xfffe, 0);
  head.writeUInt16LE(0xe000, 2);
  head.writeUInt32LE(content.length, 4);
  return Buffer.concat([head, content]);
}
export function part10(dataset: Buffer[], syntax = '1.2.840.10008.1.2.1'): Buffer {
  const meta = Buffer.concat([el(2, 1, 'OB', Buffer.from([0, 1])), el(2, 2, 'UI', str('1.2.840.10008.5.1.4.1.1.6.1')), el(2, 3, 'UI', str('1.2.3.4.5')), el(2, 0x10, 'UI', str(syntax))]);
  const preamble = Buffer.alloc(132);
  preamble.write('DICM', 128, 'latin1');
  return Buffer.concat([preamble, el(2, 0, 'UL', Buffer.from(new Uint32Array([meta.length]).buffer)), meta, ...dataset]);
}

/** An 8-bit RGB ultrasound frame, calibrated by a Sequence of Ultrasound Regions (0.01 cm across, 0.02 cm down). */
export function ultrasound(rows: number, columns: number, o: { frames?: number; planar?: 0 | 1; patient?: string } = {}): { file: Buffer; rgb: Uint8Array } {
  const rgb = new Uint8Array(rows * columns * 3);
  for (let y = 0; y < rows; y++)
    for (let x = 0; x < columns; x++) {
      const inside = (x - columns / 2) ** 2 + (y - rows / 2) ** 2 < (Math.min(rows, columns) / 3) ** 2;
      const v = inside ? 30 : 90 + ((x * 5 + y * 3) % 60);
      rgb.set([v, v, x === 2 ? 255 : v], (y * columns + x) * 3); // a coloured caliper line
    }
  let stored: Uint8Array = rgb;
  if (o.planar === 1) {
    stored = new Uint8Array(rgb.length);
    const n = rows * columns;
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) stored[c * n + i] = rgb[i * 3 + c]!;
  }
  const region = item(Buffer.concat([el(0x18, 0x6024, 'US', u16(3)), el(0x18, 0x6026, 'US', u16(3)), el(0x18, 0x602c, 'FD', f64(0.01)), el(0x18, 0x602e, 'FD', f64(0.02))]));
  const file = part10([
    el(0x08, 0x60, 'CS', str('US')),
    el(0x10, 0x10, 'PN', str(o.patient ?? 'Anonymous')),
    el(0x18, 0x6011, 'SQ', region),
    el(0x28, 0x02, 'US', u16(3)),
    el(0x28, 0x04, 'CS', str('RGB')),
    el(0x28, 0x06, 'US', u16(o.planar ?? 0)),
    ...(o.frames ? [el(0x28, 0x08, 'IS', str(String(o.frames)))] : []),
    el(0x28, 0x10, 'US', u16(rows)),
    el(0x28, 0x11, 'US', u16(columns)),
    el(0x28, 0x100, 'US', u16(8)),
    el(0x28, 0x101, 'US', u16(8)),
    el(0x28, 0x102, 'US', u16(7)),
    el(0x28, 0x103, 'US', u16(0)),
    el(0x7fe0, 0x10, 'OB', Buffer.concat(Array.from({ length: o.frames ?? 1 }, () => Buffer.from(stored)))),
  ]);
  return { file, rgb };
}

