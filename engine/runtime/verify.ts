// Nothing we write is reported as written unless onnxruntime runs it: before a quantized model is saved, a CPU
// session is made from it and run once (on the caller's inputs, or on zero inputs built from the model's shapes).
// A model that does not load is always an error. A model that loads but fails on the inputs is an error only when
// the source model runs on the same inputs; otherwise the inputs are to blame and the check says what it could not
// prove (a detector whose height must be a multiple of 32 fed a height of 1, say). Its sessions are quiet: onnxruntime's
// own log lines would only repeat, in red, the failure the check reports in its words.
import { OnnxError } from "../onnx/errors";
import type { Model } from "../onnx/model";
import { createSession } from "./session";
import { zeroFeeds } from "./shapes";
import type { Feeds } from "./tensors";

const reason = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0]!;

async function runOnce(model: Model, feeds: Feeds): Promise<void> {
  const s = await createSession(model, { ep: "cpu", threads: 1, quiet: true });
  try {
    await s.run(feeds);
  } finally {
    await s.dispose();
  }
}

/**
 * Proves that onnxruntime (CPU) loads and runs `written`, the model made from `source`, before it is saved to
 * `target`. Throws an error naming `target` when it does not; returns a note when it could not be run on the inputs
 * at hand for a reason that lies with the inputs (the source model fails on them too), else undefined.
 */
export async function verifyRunnable(written: Model, source: Model, target: string, feeds?: Feeds): Promise<string | undefined> {
  let session;
  try {
    session = await createSession(written, { ep: "cpu", threads: 1, quiet: true });
  } catch (e) {
    throw new OnnxError(`onnxruntime cannot load the model made from ${source.path ?? "the input"}, so it was not written: ${reason(e)}`, target);
  }
  let inputs: Feeds;
  try {
    inputs = feeds ?? zeroFeeds(source);
  } catch (e) {
    await session.dispose();
    return `onnxruntime loads the written model; it was not run (no inputs could be built: ${reason(e)})`;
  }
  try {
    await session.run(inputs);
    return undefined;
  } catch (e) {
    const failure = reason(e);
    try {
      await runOnce(source, inputs);
    } catch (sourceError) {
      return `onnxruntime loads the written model; running it was not checked: the input model fails on the same ${feeds ? "inputs" : "zero inputs"} too (${reason(sourceError)})`;
    }
    throw new OnnxError(`onnxruntime loads but cannot run the model made from ${source.path ?? "the input"}, which runs on the same inputs; it was not written: ${failure}`, target);
  } finally {
    await session.dispose();
  }
}
