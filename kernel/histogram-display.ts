// Calibration histograms as the Histograms view shows them: the observed float range, the chosen clipping range,
// the method (with "auto", the one it chose for the tensor and the error saved against mse), and the counts merged
// down to a few hundred bins (the calibrator keeps 2048; the view needs no more, and a large model's hundreds of
// tensors must stay a small message).
import type { HistogramDisplay } from "./display-types";
import type { PreparedModel } from "../engine/quant/index";

export function histogramDisplays(prepared: PreparedModel, maxBins = 256): HistogramDisplay[] {
  const out: HistogramDisplay[] = [];
  for (const [tensor, h] of prepared.histograms) {
    const bins = h.counts.length;
    const merge = Math.max(1, Math.ceil(bins / maxBins));
    const counts: number[] = [];
    const edges: number[] = [Number(h.edges[0])];
    for (let b = 0; b < bins; b += merge) {
      let c = 0;
      for (let k = b; k < Math.min(bins, b + merge); k++) c += h.counts[k]!;
      counts.push(c);
      edges.push(Number(h.edges[Math.min(bins, b + merge)]));
    }
    const r = prepared.ranges.get(tensor);
    const choice = prepared.choices.get(tensor);
    out.push({
      kind: "ptq.histogram",
      tensor,
      edges,
      counts,
      floatRange: [h.min, h.max],
      clipRange: r ? [r.min, r.max] : undefined,
      // The choice's first clause ("entropy (41 % less error than mse)", "minmax for every tensor, chosen at the
      // outputs"); its whole reasoning, with the errors measured, is in prepared.choices.
      method: choice ? `auto → ${choice.why.split(";")[0]!.split(" (worst")[0]}` : prepared.config.calibration.method,
    });
  }
  return out;
}
