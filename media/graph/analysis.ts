// The graph view's analysis overlay, pure (for tests): the SQNR colour scale of the nodes and its legend, and the
// geometry of a tensor's calibration histogram with its clipping range as the details pane draws it (a small SVG).
import type { HistogramDisplay } from "../../kernel/display-types";

/** SQNR bands, worst first: a node's class is `sqnr-<index>`; the legend lists them in this order. */
export const SQNR_BANDS: ReadonlyArray<{ below: number; label: string }> = [
  { below: 10, label: "< 10 dB" },
  { below: 20, label: "10–20" },
  { below: 30, label: "20–30" },
  { below: 40, label: "30–40" },
  { below: Infinity, label: "≥ 40 dB" },
];

/** The band of an SQNR (NaN counts as the worst: an analysis that produced NaN is an error to look at). */
export function sqnrBand(db: number): number {
  const i = SQNR_BANDS.findIndex((b) => db < b.below);
  return Number.isNaN(db) ? 0 : i < 0 ? SQNR_BANDS.length - 1 : i;
}

export interface HistogramGeometry {
  /** One path of the bars (log-scaled heights: one outlier bin would flatten the rest). */
  bars: string;
  /** x of the clipping range's ends (the plot spans the observed values and the clipping range); undefined without one. */
  clip?: [number, number];
  /** The values at the plot's left and right ends. */
  domain: [number, number];
}

/** Bars and clipping range of a histogram in a `width` × `height` box (y down, bars from the bottom). */
export function histogramGeometry(h: Pick<HistogramDisplay, "edges" | "counts" | "clipRange">, width: number, height: number): HistogramGeometry {
  const lo = Math.min(h.edges[0] ?? 0, h.clipRange?.[0] ?? Infinity);
  const hi = Math.max(h.edges[h.edges.length - 1] ?? 0, h.clipRange?.[1] ?? -Infinity);
  const span = hi - lo || 1;
  const x = (v: number) => ((v - lo) / span) * width;
  const top = Math.log1p(Math.max(0, ...h.counts));
  const parts: string[] = [];
  h.counts.forEach((c, i) => {
    if (c <= 0 || top === 0) return;
    const x0 = x(h.edges[i]!);
    const x1 = x(h.edges[i + 1]!);
    const y = height - (Math.log1p(c) / top) * height;
    // At least half a pixel wide, so a narrow bin with a count still shows.
    parts.push(`M${x0.toFixed(1)},${height}V${y.toFixed(1)}H${Math.max(x1, x0 + 0.5).toFixed(1)}V${height}Z`);
  });
  return {
    bars: parts.join(""),
    ...(h.clipRange ? { clip: [x(h.clipRange[0]), x(h.clipRange[1])] as [number, number] } : {}),
    domain: [lo, hi],
  };
}
