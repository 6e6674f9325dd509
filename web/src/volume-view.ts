// Draws one axial slice of a canonical (RAS+) volume: anterior up, the patient's right on the right (or on the
// left, radiological), pixels at their physical aspect (spacing), the class overlay (fill + contour) and the
// orientation letters at the edges.
import { contourPath, CONTOUR, PALETTE } from '../../src/web/overlay.ts';

export interface AxialPlane {
  /** Windowed grey, canonical plane order: x = i (towards R), y = j (towards A), x fastest. */
  grey: Uint8Array;
  /** Class index per pixel in the same order, when segmented. */
  labels?: Uint8Array;
  width: number;
  height: number;
  /** Voxel size along x and y (mm). */
  spacing: [number, number];
}

/** The colour of class k ≥ 1 (the same palette as the 2-D overlay). */
export function classColour(k: number): string {
  const [r, g, b] = PALETTE[(k - 1) % PALETTE.length]!;
  return `rgb(${r} ${g} ${b})`;
}

export class VolumeView {
  opacity = 0.45;
  showContour = true;
  /** Patient's right on the viewer's left (radiological convention) instead of RAS+ as stored. */
  radiological = false;
  private plane?: AxialPlane;
  private grey?: OffscreenCanvas;
  private fill?: OffscreenCanvas;
  private contour?: Path2D;
  /** The grey pixels as displayed (rows top to bottom), for tests and screenshots. */
  displayed?: { grey: Uint8Array; width: number; height: number };

  constructor(private readonly canvas: HTMLCanvasElement) {
    new ResizeObserver(() => this.render()).observe(canvas.parentElement ?? canvas);
  }

  /** Display index of canonical plane pixel (x, y): anterior (high y) at the top, R right unless radiological. */
  private toDisplay(src: Uint8Array, width: number, height: number): Uint8Array {
    const out = new Uint8Array(src.length);
    for (let y = 0; y < height; y++) {
      const row = (height - 1 - y) * width;
      for (let x = 0; x < width; x++) out[row + (this.radiological ? width - 1 - x : x)] = src[y * width + x]!;
    }
    return out;
  }

  setPlane(plane: AxialPlane | undefined): void {
    this.plane = plane;
    this.grey = this.fill = undefined;
    this.contour = undefined;
    this.displayed = undefined;
    if (plane) {
      const { width: w, height: h } = plane;
      const grey = this.toDisplay(plane.grey, w, h);
      this.displayed = { grey, width: w, height: h };
      const img = new ImageData(w, h);
      for (let i = 0; i < grey.length; i++) img.data.set([grey[i]!, grey[i]!, grey[i]!, 255], i * 4);
      this.grey = new OffscreenCanvas(w, h);
      this.grey.getContext('2d')!.putImageData(img, 0, 0);
      if (plane.labels) {
        const labels = this.toDisplay(plane.labels, w, h);
        const fill = new ImageData(w, h);
        let any = false;
        for (let i = 0; i < labels.length; i++) {
          const k = labels[i]!;
          if (k === 0) continue;
          any = true;
          const [r, g, b] = PALETTE[(k - 1) % PALETTE.length]!;
          fill.data.set([r, g, b, 255], i * 4);
        }
        if (any) {
          this.fill = new OffscreenCanvas(w, h);
          this.fill.getContext('2d')!.putImageData(fill, 0, 0);
          this.contour = contourPath(labels, w, h);
        }
      }
    }
    this.render();
  }

  render(): void {
    const box = this.canvas.parentElement;
    const plane = this.plane;
    if (!plane || !this.grey || !box) {
      this.canvas.hidden = true;
      return;
    }
    this.canvas.hidden = false;
    const { width: w, height: h } = plane;
    // physical size: pixels of different spacing along x and y are drawn at their aspect
    const [sx, sy] = plane.spacing.map((s) => (s > 0 && Number.isFinite(s) ? s : 1)) as [number, number];
    const margin = 34; // CSS px around the picture, room for the orientation letters
    const scale = Math.min((box.clientWidth - 2 * margin) / (w * sx), (box.clientHeight - 2 * margin) / (h * sy));
    if (!(scale > 0)) return;
    const cssW = Math.max(1, Math.floor(w * sx * scale));
    const cssH = Math.max(1, Math.floor(h * sy * scale));
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.width = `${cssW}px`;
    this.canvas.style.height = `${cssH}px`;
    this.canvas.width = Math.round(cssW * dpr);
    this.canvas.height = Math.round(cssH * dpr);
    const ctx = this.canvas.getContext('2d')!;
    const kx = this.canvas.width / w;
    const ky = this.canvas.height / h;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.imageSmoothingEnabled = Math.min(kx, ky) < 4;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(this.grey, 0, 0, this.canvas.width, this.canvas.height);
    if (this.fill && this.opacity > 0) {
      ctx.globalAlpha = this.opacity;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.fill, 0, 0, this.canvas.width, this.canvas.height);
      ctx.globalAlpha = 1;
    }
    if (this.contour && this.showContour) {
      ctx.setTransform(kx, 0, 0, ky, 0, 0);
      ctx.lineWidth = (1.5 * dpr) / Math.min(kx, ky);
      ctx.strokeStyle = CONTOUR;
      ctx.stroke(this.contour);
      ctx.setTransform(1, 0, 0, 1, 0, 0);
    }
    this.letters(ctx, dpr);
  }

  /** A, P, R, L at the edge midpoints, inside the picture. */
  private letters(ctx: CanvasRenderingContext2D, dpr: number): void {
    const { width: W, height: H } = this.canvas;
    const [left, right] = this.radiological ? ['R', 'L'] : ['L', 'R'];
    const pad = 6 * dpr;
    ctx.font = `600 ${Math.round(13 * dpr)}px system-ui, sans-serif`;
    ctx.fillStyle = '#ffd34d';
    ctx.shadowColor = 'rgb(0 0 0 / 80%)';
    ctx.shadowBlur = 3 * dpr;
    const at = (text: string, x: number, y: number, align: CanvasTextAlign, base: CanvasTextBaseline) => {
      ctx.textAlign = align;
      ctx.textBaseline = base;
      ctx.fillText(text, x, y);
    };
    at('A', W / 2, pad, 'center', 'top');
    at('P', W / 2, H - pad, 'center', 'bottom');
    at(left, pad, H / 2, 'left', 'middle');
    at(right, W - pad, H / 2, 'right', 'middle');
    ctx.shadowBlur = 0;
  }
}
