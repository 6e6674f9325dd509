/** Per-volume evaluation: surface distances (medpy's definitions), per-case scores under two protocols, the report. */
export { boundingBox, cropMask, unionBox, type Box } from './box.ts';
export { squaredDistanceTransform } from './edt.ts';
export { CLASS_COLOURS, classColour, drawCaseOverlay, overlaySlice, OVERLAY_VIEWS, type OverlayPicture, type OverlayView, type OverlayVolumes } from './overlay.ts';
export { distanceColumn, distanceHeader, perCaseCsv, VolumeReport, volumeReportHtml, writeAtomic, type CasePictures, type VolumeReportOptions } from './report.ts';
export { DISTANCE_UNIT, PROTOCOLS, scoreCase, type CaseScore, type CaseVolumes, type ClassScore, type Outcome, type Protocol } from './score.ts';
export { SCORE_METRICS, summarize, type ClassSummary, type ScoreMetric, type Stat, type VolumeSummary } from './summary.ts';
export { borderOf, directedDistances, hd95, surfaceMetrics, type SurfaceMetrics } from './surface.ts';
