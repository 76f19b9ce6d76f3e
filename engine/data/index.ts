// Calibration and evaluation data: feeds checked against a model's inputs, and lazy readers for .npy folders,
// .npz archives, ONNX test_data_set_* folders, image folders and random data, within the resource limits of
// limits.ts. See docs/calibration.md and docs/limits.md.
export {
  DataError,
  arrayTypeFor,
  batchesOf,
  checkFeeds,
  modelInputs,
  ortTypeName,
  type CalibrationData,
  type TensorArray,
  type Tensor,
  type Feeds,
  type InputSpec,
  type LoadedArray,
} from "./feeds";
export { LIMITS, LimitError, limitOf, type LimitName, type Limits } from "../onnx/limits";
export { loadNpy, parseNpy } from "./npy";
export { inputSpecs, openData, readNpyFolder, readNpz, readTestDataSets, type ModelInputsSource, type ReaderOptions } from "./readers";
export { dataKind } from "./kind";
export { describeImagePlan, imageHeader, imagePlan, readImageFolder, type ImageHeader, type ImageNormalization, type ImageOptions, type ImagePlan } from "./images";
export { randomData, seededRandom, type RandomDataOptions } from "./random";
export { ZipFile, type ZipEntry } from "./zip";
