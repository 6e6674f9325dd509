import { WebSession, type WebRuntimeInfo, type WebSessionOptions } from '../runtime/web.ts';
import { decodeImage, segmentImage, type BrowserSegmentation, type RgbaImage } from './image.ts';
import { modelInfo, readOnnxSummary, type ModelInfo } from './onnx-info.ts';

/** An exported model: its URL (fetched), or its bytes. */
export type ModelSource = string | URL | Uint8Array | ArrayBuffer;

/** An image to segment: an encoded file (PNG, JPEG, ...), canvas pixels, or decoded RGBA. */
export type ImageInput = Blob | ImageData | RgbaImage;

async function modelBytes(source: ModelSource): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  const response = await fetch(source);
  if (!response.ok) throw new Error(`cannot load the model from ${String(source)}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * Segments images in the browser with an exported `.onnx` model on onnxruntime-web (WebGPU where the browser has a
 * hardware adapter, else WebAssembly). Preprocessing and postprocessing are the Node pipeline's: the same
 * normalisation and the same mask rule, so an image at the model size gives Node's mask exactly.
 *
 * @example
 * ```ts
 * import { WebSegmenter } from 'mobileutr/web';
 *
 * const segmenter = await WebSegmenter.create('/models/busi.onnx', { wasmPaths: '/ort/' });
 * const file = document.querySelector('input[type=file]')!.files![0]!;
 * const { mask, width, height } = await segmenter.segment(file);
 * console.log(`${segmenter.runtime.backend}: ${mask.filter((v) => v > 0).length} of ${width * height} pixels`);
 * ```
 */
export class WebSegmenter {
  private constructor(
    private readonly session: WebSession,
    /** Input size, channels, classes and tensor names, from the model's metadata or its input shape. */
    readonly info: ModelInfo,
    /** The model's metadata_props (our export writes model, size, classes, and `volume` for volume models). */
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  static async create(model: ModelSource, options: WebSessionOptions = {}): Promise<WebSegmenter> {
    const bytes = await modelBytes(model);
    const info = modelInfo(bytes);
    const { metadata } = readOnnxSummary(bytes);
    return new WebSegmenter(await WebSession.create(bytes, options), info, metadata);
  }

  /** Where the network runs (the request may have fallen back from WebGPU to wasm, with the reason). */
  get runtime(): WebRuntimeInfo {
    return this.session.info;
  }

  /** The underlying session, for logits or volume segmentation (VolumeSegmenter). */
  get backend(): WebSession {
    return this.session;
  }

  /** Segments one image; the mask and probability come back at the image's own size. */
  async segment(image: ImageInput): Promise<BrowserSegmentation> {
    return segmentImage(this.session, this.info, await toRgba(image));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

async function toRgba(image: ImageInput): Promise<RgbaImage> {
  if (typeof Blob !== 'undefined' && image instanceof Blob) return decodeImage(image);
  const { data, width, height } = image as ImageData;
  if (data) return { pixels: data, width, height };
  return image as RgbaImage;
}
