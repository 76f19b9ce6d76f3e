// The narrow view of an inference session that benchmark and evaluate need. Keeping it this small lets the
// measurement code be tested with any session and keeps onnxruntime-node behind engine/runtime (the only place that
// imports it).

import path from "node:path";
import { Model } from "../onnx/model";
import type { ExecutionProvider } from "../runtime/session";
import type { Feeds, Tensor, ValueInfo } from "./feeds";

export type { ExecutionProvider };

export interface RunnerOptions {
  /** intra-op threads; inter-op is always 1 and execution sequential, so runs are comparable. */
  threads: number;
  ep: ExecutionProvider;
}

export interface Runner {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  /** The provider the session actually got (a CUDA request may fall back to CPU). */
  readonly ep: ExecutionProvider;
  run(feeds: Feeds, fetch?: readonly string[]): Promise<Record<string, Tensor>>;
  release(): Promise<void>;
}

/** A model to measure: a file path, a loaded or converted Model (e.g. convert()'s result), or named bytes. */
export type ModelSource = string | Model | { name: string; bytes: Uint8Array };

export type OpenRunner = (model: ModelSource, opts: RunnerOptions) => Promise<Runner>;

export function modelName(m: ModelSource): string {
  if (typeof m === "string") return m;
  if (m instanceof Model) return m.path ? path.basename(m.path) : "in-memory model";
  return m.name;
}

/** Several models: a record (its keys name them) or a list (named after their files). */
export type BenchmarkModels = Record<string, ModelSource> | ModelSource[];

export function namedModels(models: BenchmarkModels, caller: string): [string, ModelSource][] {
  const entries: [string, ModelSource][] = Array.isArray(models) ? models.map((m) => [modelName(m), m]) : Object.entries(models);
  if (entries.length === 0) throw new Error(`${caller}: no models given`);
  return entries;
}
