// Adapter: a Runner over engine/runtime's session (onnxruntime-node), with intra-op threads pinned; engine/runtime
// already fixes inter-op at 1 and execution sequential, which is what comparable timings need.

import { Model } from "../onnx/model";
import { createSession } from "../runtime/session";
import type { ValueInfo } from "./feeds";
import type { ModelSource, Runner, RunnerOptions } from "./runner";

export async function openRuntimeRunner(model: ModelSource, opts: RunnerOptions): Promise<Runner> {
  const src = typeof model === "string" || model instanceof Model ? model : model.bytes;
  const session = await createSession(src, { threads: opts.threads, ep: opts.ep });
  const info = (i: (typeof session.inputs)[number]): ValueInfo => ({ name: i.name, type: i.type ?? "unknown", shape: i.shape ?? [] });
  return {
    inputs: session.inputs.map(info),
    outputs: session.outputs.map(info),
    ep: session.ep,
    run: (feeds, fetch) => session.run(feeds, fetch),
    release: () => session.dispose(),
  };
}
