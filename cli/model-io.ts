// What a command learns about a model before it reads data for it: the inputs and outputs onnxruntime reports.
import { createSession, type IOInfo } from "../engine/runtime/session";

/** Opens `file` in onnxruntime (one thread, CPU), reads its inputs and outputs, and closes it again. */
export async function modelIO(file: string): Promise<{ inputs: readonly IOInfo[]; outputs: readonly IOInfo[] }> {
  const session = await createSession(file, { threads: 1 });
  try {
    return { inputs: session.inputs, outputs: session.outputs };
  } finally {
    await session.dispose();
  }
}
