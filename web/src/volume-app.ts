// The volume part of the page: open a NIfTI file, scroll its axial slices with window/level, segment the current
// slice or the whole volume with the loaded model, show the class legend, download the label NIfTI on the
// source grid. main.ts hands it the files and the model; it reports through the page's busy badge and message.
import type { Intensity } from '../../src/data/volume/intensity.ts';
import type { VolumeModelMeta } from '../../src/data/volume/model-meta.ts';
import { axisCodes, fromCanonical, toCanonical, type Reorientation } from '../../src/data/volume/orientation.ts';
import { formatDims, type Volume } from '../../src/data/volume/volume.ts';
import type { InferenceBackend } from '../../src/runtime/types.ts';
import { classCounts, renderLegend } from './legend.ts';
import { readNiftiBytes, VolumeFileError } from '../../src/web/nifti-file.ts';
import { labelNiftiGz, labelValues } from '../../src/web/nifti-label.ts';
import { readOnnxSummary, type ModelInfo } from '../../src/web/onnx-info.ts';
import type { PageState, VolumePageState } from './page-state.ts';
import { classTable, inputProblem, VolumeSegmenter, type InputMode } from '../../src/web/volume-segment.ts';
import { intensityLabel, volumeMetaOf } from '../../src/web/volume-meta.ts';
import { cutPlane } from '../../src/web/volume-slices.ts';
import { VolumeView } from './volume-view.ts';
import { autoWindow, formatWindow, looksLikeCt, WINDOW_PRESETS, windowPlane, type WindowLevel, type WindowPreset } from '../../src/web/window-level.ts';

export const isNiftiName = (name: string): boolean => /\.nii(\.gz)?$/i.test(name);

export interface VolumeHooks {
  setState(state: PageState['state']): void;
  busy(text: string | undefined): void;
  message(text: string, kind?: 'info' | 'error'): void;
  /** The file line of the image card. */
  fileStatus(text: string, kind: 'ok' | 'error'): void;
  /** The page switches its viewer to the volume. */
  showVolume(): void;
}

interface OpenVolume {
  name: string;
  /** The file's grid, affine and datatype (its voxels dropped). */
  source: Volume;
  canonical: Volume;
  reorientation: Reorientation;
}

interface LoadedModel {
  session: InferenceBackend;
  info: ModelInfo;
  source: string;
  meta?: VolumeModelMeta;
  metaProblem?: string;
}

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} missing`);
  return e as T;
}

const nextFrame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
const mm = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/0$/, ''));

export class VolumeApp {
  private readonly ui = {
    card: el('volume-card'),
    dims: el('volume-dims'),
    spacing: el('volume-spacing'),
    orientation: el('volume-orientation'),
    slice: el<HTMLInputElement>('volume-slice'),
    sliceValue: el<HTMLOutputElement>('volume-slice-value'),
    preset: el<HTMLSelectElement>('volume-preset'),
    level: el<HTMLInputElement>('volume-level'),
    width: el<HTMLInputElement>('volume-width'),
    windowValue: el<HTMLOutputElement>('volume-window-value'),
    radiological: el<HTMLInputElement>('volume-radiological'),
    modelStatus: el<HTMLParagraphElement>('volume-model-status'),
    inputRow: el('volume-input-row'),
    input: el<HTMLSelectElement>('volume-input'),
    context: el<HTMLSelectElement>('volume-context'),
    segmentSlice: el<HTMLButtonElement>('segment-slice'),
    segmentVolume: el<HTMLButtonElement>('segment-volume'),
    stop: el<HTMLButtonElement>('segment-stop'),
    progress: el<HTMLProgressElement>('volume-progress'),
    legend: el('volume-legend'),
    stats: el('volume-stats'),
    download: el<HTMLButtonElement>('volume-download'),
    opacity: el<HTMLInputElement>('opacity'),
    contour: el<HTMLInputElement>('contour'),
  };
  private readonly view: VolumeView;
  private volume?: OpenVolume;
  private model?: LoadedModel;
  private segmenter?: VolumeSegmenter;
  private segmenterModel?: LoadedModel;
  private window: WindowLevel = { level: 40, width: 400 };
  private slice = 0;
  /** Bumped to stop a running segmentation (new file, new model, Stop). */
  private runGeneration = 0;
  private running?: Promise<void>;
  private totalMs = 0;

  constructor(
    canvas: HTMLCanvasElement,
    private readonly page: PageState,
    private readonly hooks: VolumeHooks,
  ) {
    this.view = new VolumeView(canvas);
    this.view.opacity = Number(this.ui.opacity.value) / 100;
    this.wire(canvas);
  }

  get active(): boolean {
    return this.volume !== undefined;
  }

  /** Opens a .nii / .nii.gz; errors (4-D, datatype, truncated, too large) end up as one line in the page. */
  async open(file: File): Promise<void> {
    this.hooks.busy(`Reading ${file.name}…`);
    try {
      const source = await readNiftiBytes(new Uint8Array(await file.arrayBuffer()), file.name);
      const { volume: canonical, reorientation } = toCanonical(source);
      await this.stop();
      // the source's voxels are not needed again (the canonical copy is what is shown and segmented): let them go
      this.volume = { name: file.name, source: { ...source, data: new Float32Array(0) }, canonical, reorientation };
      this.segmenter = undefined;
      this.totalMs = 0;
      this.ui.stats.textContent = '';
      const ct = looksLikeCt(canonical.data);
      this.setPreset(ct ? 'ct-abdomen' : 'auto', false);
      this.slice = Math.floor(canonical.dims[2] / 2);
      this.ui.slice.max = String(canonical.dims[2] - 1);
      this.ui.dims.textContent = `${formatDims(source.dims)} (${axisCodes(source.affine)})`;
      this.ui.spacing.textContent = `${canonical.spacing.map(mm).join(' × ')} mm`;
      this.ui.orientation.textContent = 'RAS+ (anterior up)';
      this.ui.card.hidden = false;
      this.hooks.showVolume();
      this.hooks.fileStatus(`${file.name} (${formatDims(source.dims)}, ${source.datatype}${ct ? ', CT' : ''})`, 'ok');
      this.page.volume = this.state();
      this.refreshModel();
      this.show();
      this.hooks.busy(undefined);
      this.hooks.setState('idle');
      this.hooks.message(this.model ? 'Volume ready. Scroll with the slider or the mouse wheel; segment a slice or the whole volume.' : 'Volume ready. Choose a model to segment it.');
    } catch (e) {
      this.hooks.busy(undefined);
      const why = e instanceof VolumeFileError ? e.message : `${file.name}: cannot read it as NIfTI (${(e as Error).message})`;
      this.hooks.fileStatus(why, 'error');
      this.hooks.message(why, 'error');
      this.hooks.setState('error');
    }
  }

  /** Leaves volume mode (an image was opened). */
  async close(): Promise<void> {
    await this.stop();
    this.volume = undefined;
    this.segmenter = undefined;
    this.view.setPlane(undefined);
    this.ui.card.hidden = true;
    this.page.volume = undefined;
  }

  /** A newly loaded model; any run with the previous one is stopped first, so its session can be released. */
  async setModel(session: InferenceBackend, info: ModelInfo, bytes: Uint8Array, source: string): Promise<void> {
    await this.stop();
    const { meta, problem } = volumeMetaOf(readOnnxSummary(bytes).metadata);
    this.model = { session, info, source, meta, metaProblem: problem };
    this.segmenter = undefined;
    this.ui.stats.textContent = '';
    if (this.page.volume) this.page.volume.result = undefined;
    this.refreshModel();
    if (this.volume) this.show();
  }

  /** Stops a running segmentation and waits for its current slice. */
  async stop(): Promise<void> {
    this.runGeneration++;
    await this.running?.catch(() => undefined);
  }

  // ---- model input -------------------------------------------------------------------------------------------

  /** The input mode the model gets now: its metadata, else the user's choice. */
  private inputMode(): InputMode {
    const meta = this.model?.meta;
    if (meta) return { kind: 'volume', intensity: meta.intensity, context: meta.context };
    const choice = this.ui.input.value;
    const context = this.ui.context.value === '1' ? 1 : 0;
    if (choice === 'image') return { kind: 'image', window: { ...this.window } };
    const intensity: Intensity = choice === 'mri' ? { kind: 'mri' } : choice === 'window' ? { kind: 'window', ...this.window } : { kind: 'ct' };
    return { kind: 'volume', intensity, context };
  }

  private refreshModel(): void {
    const m = this.model;
    const ui = this.ui;
    const hasMeta = m?.meta !== undefined;
    ui.inputRow.hidden = hasMeta;
    ui.input.disabled = hasMeta || !m;
    ui.context.disabled = hasMeta || !m || ui.input.value === 'image';
    if (m?.meta) {
      ui.context.value = String(m.meta.context);
    }
    let status: string;
    let kind: 'ok' | 'warn' | 'error' | 'info' = 'info';
    let problem: string | undefined;
    if (!m) status = 'No model loaded: choose an .onnx file to segment.';
    else {
      const mode = this.inputMode();
      problem = inputProblem(m.info, mode, this.table()!);
      if (m.meta) {
        status = `From the model: ${intensityLabel(m.meta.intensity)}, ${m.meta.axis} slices, context ${m.meta.context ? '±1' : 'none'}.`;
        kind = 'ok';
        if (m.meta.axis !== 'axial') status += ' Whole-volume segmentation only (the view is axial).';
      } else {
        status = m.metaProblem
          ? `The model's volume metadata is not usable (${m.metaProblem}): choose how slices are prepared.`
          : 'The model has no volume metadata (an image model, or exported without it): choose how slices are prepared.';
        kind = 'warn';
      }
      if (problem) {
        status = `${status} Cannot segment: ${problem}.`;
        kind = 'error';
      }
    }
    ui.modelStatus.textContent = status;
    ui.modelStatus.dataset.kind = kind;
    const axis = m?.meta?.axis ?? 'axial';
    const ready = !!m && !!this.volume && !problem;
    ui.segmentSlice.disabled = !ready || axis !== 'axial';
    ui.segmentSlice.title = axis !== 'axial' ? `this model segments ${axis} slices: use Segment volume` : '';
    ui.segmentVolume.disabled = !ready;
    if (m) renderLegend(ui.legend, this.table()!, this.segmenter ? classCounts(this.segmenter.labels, this.segmenter.table.values.length) : undefined, this.voxelMm3());
    else ui.legend.replaceChildren();
    if (this.page.volume) {
      const mode = m ? this.inputMode() : undefined;
      this.page.volume.input = mode && {
        source: m?.meta ? 'metadata' : 'choice',
        kind: mode.kind,
        intensity: mode.kind === 'volume' ? intensityLabel(mode.intensity) : undefined,
        context: mode.kind === 'volume' ? mode.context : 0,
        axis,
      };
    }
  }

  private table() {
    return this.model && classTable(this.model.meta, this.model.info.classes);
  }

  private voxelMm3(): number | undefined {
    const s = this.volume?.canonical.spacing;
    const v = s ? Math.abs(s[0] * s[1] * s[2]) : 0;
    return v > 0 && Number.isFinite(v) ? v : undefined;
  }

  // ---- view --------------------------------------------------------------------------------------------------

  private setPreset(preset: WindowPreset, render = true): void {
    const v = this.volume;
    if (preset === 'auto' && v) this.window = autoWindow(v.canonical.data);
    else if (preset !== 'auto' && preset !== 'custom') this.window = { level: WINDOW_PRESETS[preset].level, width: WINDOW_PRESETS[preset].width };
    this.ui.preset.value = preset;
    const round = (x: number) => String(Math.round(x * 100) / 100);
    this.ui.level.value = round(this.window.level);
    this.ui.width.value = round(this.window.width);
    if (render) this.show();
  }

  /** Draws the current axial slice with its overlay and updates the controls and the page state. */
  private show(): void {
    const v = this.volume;
    if (!v) return;
    const [nx, ny, nz] = v.canonical.dims;
    this.slice = Math.min(Math.max(this.slice, 0), nz - 1);
    const grey = windowPlane(cutPlane(v.canonical.data, v.canonical.dims, 'axial', this.slice), this.window);
    const seg = this.segmenter;
    const labels = seg ? cutPlane(seg.labels, v.canonical.dims, 'axial', this.slice) : undefined;
    this.view.setPlane({ grey, labels, width: nx, height: ny, spacing: [v.canonical.spacing[0], v.canonical.spacing[1]] });
    this.ui.slice.value = String(this.slice);
    this.ui.sliceValue.textContent = `${this.slice + 1} / ${nz}`;
    this.ui.windowValue.textContent = formatWindow(this.window);
    this.ui.download.disabled = !seg?.complete;
    const s = (this.page.volume ??= this.state());
    s.slice = this.slice;
    s.window = { ...this.window };
    s.preset = this.ui.preset.value;
  }

  private state(): VolumePageState {
    const v = this.volume!;
    return {
      name: v.name,
      sourceDims: [...v.source.dims],
      orientation: axisCodes(v.source.affine),
      dims: [...v.canonical.dims],
      spacing: [...v.canonical.spacing],
      slice: this.slice,
      slices: v.canonical.dims[2],
      window: { ...this.window },
      preset: this.ui.preset.value,
      displayed: () => {
        const d = this.view.displayed;
        return d && { grey: Array.from(d.grey), width: d.width, height: d.height };
      },
    };
  }

  // ---- segmentation ------------------------------------------------------------------------------------------

  /** The segmenter for the current model and input mode (a new one, and an empty overlay, when either changed). */
  private segmenterFor(): VolumeSegmenter {
    const m = this.model!;
    const mode = this.inputMode();
    const s = this.segmenter;
    if (s && this.segmenterModel === m && JSON.stringify(s.mode) === JSON.stringify(mode)) return s;
    this.segmenter = new VolumeSegmenter(m.session, m.info, this.volume!.canonical, mode, m.meta?.axis ?? 'axial', classTable(m.meta, m.info.classes));
    this.segmenterModel = m;
    this.totalMs = 0;
    return this.segmenter;
  }

  private async segment(which: 'slice' | 'volume'): Promise<void> {
    if (!this.model || !this.volume) return;
    await this.stop();
    const generation = ++this.runGeneration;
    const run = this.runSlices(which, generation);
    this.running = run;
    await run;
  }

  private async runSlices(which: 'slice' | 'volume', generation: number): Promise<void> {
    const ui = this.ui;
    this.hooks.setState('running');
    this.hooks.message('');
    const t0 = performance.now();
    try {
      const seg = this.segmenterFor();
      const ks = which === 'slice' ? [this.slice] : Array.from({ length: seg.slices }, (_, k) => k);
      ui.stop.hidden = which === 'slice';
      ui.progress.hidden = which === 'slice';
      ui.progress.max = ks.length;
      ui.segmentVolume.disabled = ui.segmentSlice.disabled = true;
      let done = 0;
      let ms = 0;
      for (const k of ks) {
        this.hooks.busy(which === 'slice' ? 'Segmenting slice…' : `Segmenting slice ${done + 1} / ${ks.length}…`);
        await nextFrame(); // paint the badge before the (synchronous) wasm run takes the main thread
        if (generation !== this.runGeneration) break;
        ms += await seg.segmentSlice(k);
        ui.progress.value = ++done;
        if (seg.axis !== 'axial' || k === this.slice) this.show();
      }
      this.totalMs += performance.now() - t0;
      const stopped = done < ks.length;
      this.report(seg, done, ms, stopped);
      this.show();
      this.hooks.busy(undefined);
      this.hooks.setState(stopped ? 'idle' : 'done');
    } catch (e) {
      this.hooks.busy(undefined);
      this.hooks.message(`Segmentation failed: ${(e as Error).message}`, 'error');
      this.hooks.setState('error');
    } finally {
      ui.stop.hidden = true;
      ui.progress.hidden = true;
      this.refreshModel();
    }
  }

  private report(seg: VolumeSegmenter, done: number, ms: number, stopped: boolean): void {
    const segmented = seg.done.reduce((n, d) => n + d, 0);
    const counts = classCounts(seg.labels, seg.table.values.length);
    renderLegend(this.ui.legend, seg.table, counts, this.voxelMm3());
    const per = done ? ms / done : 0;
    this.ui.stats.textContent = `${segmented} / ${seg.slices} ${seg.axis} slices segmented · ${per.toFixed(1)} ms per slice (network) · ${(this.totalMs / 1000).toFixed(2)} s in all`;
    this.page.volume!.result = {
      modelSource: this.segmenterModel!.source,
      axis: seg.axis,
      segmented,
      slices: seg.slices,
      complete: seg.complete,
      classValues: [...seg.table.values],
      classNames: [...seg.table.names],
      counts,
      inferenceMs: seg.inferenceMs,
      totalMs: this.totalMs,
    };
    this.hooks.message(
      stopped
        ? `Stopped after ${done} slices.`
        : seg.complete
          ? `Segmented all ${seg.slices} ${seg.axis} slices. Download the label NIfTI (on the source grid).`
          : `Segmented slice ${this.slice + 1}. Segment the whole volume to download the label NIfTI.`,
    );
  }

  private async download(): Promise<void> {
    const v = this.volume;
    const seg = this.segmenter;
    if (!v || !seg?.complete) return;
    const labels = labelValues(fromCanonical(seg.labels, v.reorientation), seg.table.values);
    const blob = await labelNiftiGz(labels, v.source.grid);
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${v.name.replace(/\.nii(\.gz)?$/i, '')}_labels.nii.gz`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }

  // ---- wiring ------------------------------------------------------------------------------------------------

  private wire(canvas: HTMLCanvasElement): void {
    const ui = this.ui;
    const goTo = (k: number) => {
      this.slice = k;
      this.show();
    };
    ui.slice.addEventListener('input', () => goTo(Number(ui.slice.value)));
    (canvas.parentElement ?? canvas).addEventListener(
      'wheel',
      (e) => {
        if (!this.volume || e.deltaY === 0) return;
        e.preventDefault();
        goTo(this.slice + Math.sign(e.deltaY));
      },
      { passive: false },
    );
    ui.preset.addEventListener('change', () => this.setPreset(ui.preset.value as WindowPreset));
    const typed = () => {
      const level = Number(ui.level.value);
      const width = Number(ui.width.value);
      if (!Number.isFinite(level) || !(width > 0)) return;
      this.window = { level, width };
      ui.preset.value = 'custom';
      this.show();
    };
    ui.level.addEventListener('input', typed);
    ui.width.addEventListener('input', typed);
    ui.radiological.addEventListener('change', () => {
      this.view.radiological = ui.radiological.checked;
      this.show();
    });
    ui.input.addEventListener('change', () => this.refreshModel());
    ui.context.addEventListener('change', () => this.refreshModel());
    ui.segmentSlice.addEventListener('click', () => void this.segment('slice'));
    ui.segmentVolume.addEventListener('click', () => void this.segment('volume'));
    ui.stop.addEventListener('click', () => void this.stop());
    ui.download.addEventListener('click', () => void this.download());
    ui.opacity.addEventListener('input', () => {
      this.view.opacity = Number(ui.opacity.value) / 100;
      this.view.render();
    });
    ui.contour.addEventListener('change', () => {
      this.view.showContour = ui.contour.checked;
      this.view.render();
    });
    this.dragWindow(canvas);
  }

  /** Dragging on the slice changes the window: right widens, up raises the level (as most viewers do). */
  private dragWindow(canvas: HTMLCanvasElement): void {
    let from: { x: number; y: number; w: WindowLevel } | undefined;
    canvas.addEventListener('pointerdown', (e) => {
      if (!this.volume || e.button !== 0) return;
      from = { x: e.clientX, y: e.clientY, w: { ...this.window } };
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!from) return;
      const k = Math.max(from.w.width, 1) / 200; // 200 px of drag = the current width
      this.window = { level: from.w.level - (e.clientY - from.y) * k, width: Math.max(1, from.w.width + (e.clientX - from.x) * k) };
      this.setPreset('custom');
    });
    const end = () => (from = undefined);
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
  }
}
