// Accuracy recovery beyond keeping layers in float: cross-layer equalization and SmoothQuant rewrite the FLOAT
// model before prepare() (exact in float, friendlier ranges); bias correction fixes the quantized model's biases
// after convert(). Each returns a new Model and a report of what it changed; inputs are never modified.
//
//   const { model: eq } = await equalizeCrossLayer(float);            // depthwise/ReLU CNNs, per-tensor weights
//   const { model: sm } = await smoothQuant(float, calib, { alpha: 0.5 }); // MatMul after LayerNorm/outliers
//   const prepared = await prepare(eq); await calibrate(prepared, calib); const q = await convert(prepared);
//   const { model: fixed } = await correctBias(prepared.model, q, calib);
//   const { model: rounded } = await refineRounding(prepared.model, q, calib); // weight codes fitted per layer
//   const { model: ada } = await adaRound(prepared.model, q, calib);          // the same, by AdaRound's gradient fit
export { equalizeCrossLayer, type ClePair, type CleOptions, type CleReport } from "./cle";
export { smoothQuant, type SmoothQuantOptions, type SmoothQuantReport, type SmoothedTensor } from "./smoothquant";
export { correctBias, type BiasCorrectionOptions, type BiasCorrectionReport, type CorrectedBias } from "./bias-correction";
export { refineRounding, type RoundedLayer, type RoundingOptions, type RoundingReport } from "./rounding";
export { adaRound, type AdaRoundOptions } from "./adaround";
export { channelStats, type ChannelStats, type StatsRequest } from "./tensors";
