// Calibration: observe the float ranges of chosen tensors over calibration data, then pick clipping ranges.
//
//   const cal = new Calibrator(model, ["conv1_out", "relu2_out"], { method: "entropy" });
//   await cal.collect(openData("calib/", model), { onProgress, signal });   // may be called again with more data
//   cal.ranges();      // Map tensor -> { min, max } chosen by the method (before scale/zero-point math)
//   cal.histograms();  // Map tensor -> histogram (histogram methods), for the UI and analysis
//   await cal.dispose();
//
// Memory stays flat in the number of samples: min/max reduce in the graph, histogram methods fold each batch
// into fixed-size histograms; no batch output is kept.

export type { CalibrationData, Feeds, Tensor, TensorArray } from "../data/feeds";

export { CALIBRATION_METHODS, DEFAULT_CALIBRATION_METHOD } from "./types";
export type { CalibrationMethod, CalibrationOptions, CollectOptions, TensorHistogram, TensorRange } from "./types";

export { Calibrator } from "./calibrator";
export { AUTO_CANDIDATES, type AutoCandidate, type AutoChoice } from "./auto";
export { MinMaxObserver, batchStats } from "./minmax";
export { StreamingHistogram } from "./histogram";
export { entropyThreshold, mseThreshold, percentileThreshold } from "./thresholds";
export { chooseWideActivations, worstNoiseRatio, type WideActivations } from "./activation-precision";
