// Pre-processing through onnxruntime's graph optimizer: constant folding, Conv+BatchNorm fusion, Constant nodes to
// initializers, Shape chains folded. "basic" gives a portable ONNX file; "extended"/"all" may add com.microsoft or
// CPU-layout ops (NCHWc) that only onnxruntime on this kind of CPU runs, so they are refused unless asked for.
import { existsSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { OnnxError, outputExists } from "../onnx/errors";
import { Model } from "../onnx/model";
import { createSession, type OptimizationLevel } from "./session";

export interface OptimizeOptions {
  overwrite?: boolean;
  /** Needed for "extended"/"all": their output is tied to onnxruntime (and, for "all", to this CPU). */
  allowRuntimeSpecificOps?: boolean;
}

/** Optimizes `model` and writes the result to `out` atomically; returns the optimized model, loaded from `out`. */
export async function optimizeModel(
  model: Model | string,
  out: string,
  level: Exclude<OptimizationLevel, "disabled"> = "basic",
  options: OptimizeOptions = {},
): Promise<Model> {
  const target = path.resolve(out);
  const source = typeof model === "string" ? path.resolve(model) : model.path;
  if (source && source === target) throw new OnnxError("refusing to write the optimized model over its source: choose another path", out);
  if (existsSync(target) && !options.overwrite) throw outputExists(out);
  if (level !== "basic" && !options.allowRuntimeSpecificOps) {
    throw new OnnxError(
      `level "${level}" can write onnxruntime-only or CPU-specific ops into the file; use "basic" for a portable model, or pass allowRuntimeSpecificOps`,
      out,
    );
  }
  const tmp = `${target}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp.onnx`;
  try {
    const s = await createSession(model, { optimization: level, optimizedModelPath: tmp });
    await s.dispose();
    if (!existsSync(tmp)) throw new OnnxError("onnxruntime did not write the optimized model", out);
    renameSync(tmp, target);
  } finally {
    rmSync(tmp, { force: true });
  }
  return Model.load(target);
}
