// The narrow view of an inference session that benchmark and evaluate need. Keeping it this small lets the
// measurement code be tested with any session and keeps onnxruntime-node behind kernel/runtime (the only place that
// imports it).

import type { Feeds, HostTensor, ValueInfo } from "./feeds";

export type ExecutionProvider = "cpu" | "cuda";

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
  run(feeds: Feeds, fetch?: readonly string[]): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

/** A model to measure: a file path, or bytes with a display name. */
export type ModelSource = string | { name: string; bytes: Uint8Array };

export type OpenRunner = (model: ModelSource, opts: RunnerOptions) => Promise<Runner>;

export function modelName(m: ModelSource): string {
  return typeof m === "string" ? m : m.name;
}
