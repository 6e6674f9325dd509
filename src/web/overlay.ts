// Draws the image with the mask on top: a translucent fill (opacity slider) and a crisp contour drawn as vector
// edges at display resolution, so small images scaled up keep a thin outline.
import type { RgbaImage } from './image.ts';

/** Fill colours per class (index 1..); class 0 is background. */
export const PALETTE: readonly [number, number, number][] = [
  [34, 211, 238],
  [244, 63, 94],
  [163, 230, 53],
  [251, 146, 60],
  [192, 132, 252],
  [250, 204, 21],
  [59, 130, 246],
];
export const CONTOUR = '#ffd34d';

function sourceCanvas(width: number, height: number): OffscreenCanvas {
  return new OffscreenCanvas(width, height);
}

/** Pixel edges between a labelled pixel and a different label (or the border), merged into runs. */
export function contourPath(mask: Uint8Array, width: number, height: number): Path2D {
  const path = new Path2D();
  const at = (x: number, y: number): number => (x < 0 || y < 0 || x >= width || y >= height ? 0 : mask[y * width + x]!);
  const edge = (a: number, b: number): boolean => a !== b && (a !== 0 || b !== 0);
  // horizontal edges: between row y-1 and row y
  for (let y = 0; y <= height; y++) {
    let start = -1;
    for (let x = 0; x <= width; x++) {
      const on = x < width && edge(at(x, y - 1), at(x, y));
      if (on && start < 0) start = x;
      if (!on && start >= 0) {
        path.moveTo(start, y);
        path.lineTo(x, y);
        start = -1;
      }
    }
  }
  // vertical edges: between column x-1 and column x
  for (let x = 0; x <= width; x++) {
    let start = -1;
    for (let y = 0; y <= height; y++) {
      const on = y < height && edge(at(x - 1, y), at(x, y));
      if (on && start < 0) start = y;
      if (!on && start >= 0) {
        path.moveTo(x, start);
        path.lineTo(x, y);
        start = -1;
      }
    }
  }
  return path;
}

export class OverlayView {
  private image?: OffscreenCanvas;
  private maskFill?: OffscreenCanvas;
  private contour?: Path2D;
  opacity = 0.45;
  showContour = true;

  constructor(private readonly canvas: HTMLCanvasElement) {
    new ResizeObserver(() => this.render()).observe(canvas.parentElement ?? canvas);
  }

  get hasImage(): boolean {
    return this.image !== undefined;
  }

  setImage(img: RgbaImage): void {
    const c = sourceCanvas(img.width, img.height);
    c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(img.pixels), img.width, img.height), 0, 0);
    this.image = c;
    this.maskFill = undefined;
    this.contour = undefined;
    this.render();
  }

  /** `mask` at the image size: 0/255 for binary models, class indices for multi-class. */
  setMask(mask: Uint8Array | undefined, width: number, height: number, classes: number): void {
    if (!mask) {
      this.maskFill = undefined;
      this.contour = undefined;
      this.render();
      return;
    }
    const c = sourceCanvas(width, height);
    const data = new ImageData(width, height);
    for (let i = 0; i < mask.length; i++) {
      const label = classes === 1 ? (mask[i]! > 0 ? 1 : 0) : mask[i]!;
      if (label === 0) continue;
      const [r, g, b] = PALETTE[(label - 1) % PALETTE.length]!;
      data.data.set([r, g, b, 255], i * 4);
    }
    c.getContext('2d')!.putImageData(data, 0, 0);
    this.maskFill = c;
    this.contour = contourPath(classes === 1 ? mask.map((v) => (v > 0 ? 1 : 0)) : mask, width, height);
    this.render();
  }

  render(): void {
    const box = this.canvas.parentElement;
    if (!this.image || !box) {
      this.canvas.hidden = true;
      return;
    }
    this.canvas.hidden = false;
    const { width: w, height: h } = this.image;
    const margin = 24; // CSS px around the picture inside the stage
    const scale = Math.min((box.clientWidth - 2 * margin) / w, (box.clientHeight - 2 * margin) / h);
    if (!(scale > 0)) return;
    const cssW = Math.max(1, Math.floor(w * scale));
    const cssH = Math.max(1, Math.floor(h * scale));
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.width = `${cssW}px`;
    this.canvas.style.height = `${cssH}px`;
    this.canvas.width = Math.round(cssW * dpr);
    this.canvas.height = Math.round(cssH * dpr);
    const ctx = this.canvas.getContext('2d')!;
    const k = this.canvas.width / w;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    // strongly enlarged (small) images show their pixels rather than a blur; others are smoothed
    ctx.imageSmoothingEnabled = k < 4;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(this.image, 0, 0, this.canvas.width, this.canvas.height);
    if (this.maskFill && this.opacity > 0) {
      ctx.globalAlpha = this.opacity;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.maskFill, 0, 0, this.canvas.width, this.canvas.height);
      ctx.globalAlpha = 1;
    }
    if (this.contour && this.showContour) {
      ctx.setTransform(k, 0, 0, k, 0, 0);
      ctx.lineWidth = (1.75 * dpr) / k;
      ctx.lineJoin = 'round';
      ctx.lineCap = 'round';
      ctx.strokeStyle = CONTOUR;
      ctx.stroke(this.contour);
      ctx.setTransform(1, 0, 0, 1, 0, 0);
    }
  }
}
