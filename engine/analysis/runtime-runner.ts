// Deprecated: the CLI's way to learn a model's inputs before engine/runtime's createSession became the one way to
// run a model (benchmark and evaluate use it). Kept until cli/bench, cli/demo and cli/report open a session
// themselves; the data functions take the session's IOInfo as it is.

import type { ExecutionProvider } from "../runtime/session";
import type { Feeds, Tensor } from "./feeds";
import { openModel, type ModelSource } from "./benchmark";

/** @deprecated engine/runtime's IOInfo. Symbolic or unknown dimensions are strings or -1; no dims: []. */
export interface ValueInfo {
  name: string;
  type: string;
  shape: readonly (number | string)[];
}

/** @deprecated engine/runtime's Session. */
export interface Runner {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly ep: ExecutionProvider;
  run(feeds: Feeds, fetch?: readonly string[]): Promise<Record<string, Tensor>>;
  release(): Promise<void>;
}

/** @deprecated use createSession (engine/runtime/session). */
export async function openRuntimeRunner(model: ModelSource, opts: { threads: number; ep: ExecutionProvider }): Promise<Runner> {
  const session = await openModel(model, opts.threads, opts.ep);
  const info = (i: (typeof session.inputs)[number]): ValueInfo => ({ name: i.name, type: i.type ?? "unknown", shape: i.shape ?? [] });
  return {
    inputs: session.inputs.map(info),
    outputs: session.outputs.map(info),
    ep: session.ep,
    run: (feeds, fetch) => session.run(feeds, fetch),
    release: () => session.dispose(),
  };
}
