// A page that imports the package's browser entry by name and segments one image with it.
import { WebSegmenter } from 'mobileutr/web';

declare global {
  interface Window {
    result?: { mask: number[]; logits: number[]; width: number; height: number; backend: string } | { error: string };
  }
}

try {
  const segmenter = await WebSegmenter.create('./model.onnx', { backend: 'wasm', wasmPaths: new URL('./ort/', location.href).href });
  const image = await (await fetch('./image.png')).blob();
  const r = await segmenter.segment(image);
  window.result = { mask: Array.from(r.mask), logits: Array.from(r.logits), width: r.width, height: r.height, backend: segmenter.runtime.backend };
} catch (e) {
  window.result = { error: String((e as Error)?.stack ?? e) };
}
