declare module 'bmp-js' {
  /** Decodes a BMP file: `data` holds 4 bytes per pixel (A, B, G, R), rows top to bottom. */
  export function decode(buffer: Buffer): { width: number; height: number; data: Buffer };
  const bmp: { decode: typeof decode };
  export default bmp;
}
