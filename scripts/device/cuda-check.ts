// Run on a machine with an NVIDIA GPU (see scripts/device/run-cuda-check.sh): asks engine/runtime for the CUDA
// execution provider on the fixture CNN and reports what happened — CUDA used, or the fallback to CPU and why —
// and whether the outputs agree with a CPU session.
import os from "node:os";
import path from "node:path";
import { createSession } from "../../engine/runtime/session";

async function main(): Promise<void> {
  const model = path.resolve(process.argv[2] ?? "test/fixtures/models/cnn.onnx");
  const ort = await import("onnxruntime-node");
  console.log(`node ${process.version}, ${os.cpus().length} cpus; onnxruntime backends: ${JSON.stringify(ort.listSupportedBackends())}`);
  // What onnxruntime itself says when asked for CUDA directly (our runtime checks for the provider library first).
  try {
    const raw = await ort.InferenceSession.create(model, { executionProviders: ["cuda"] });
    console.log("raw onnxruntime-node: a CUDA session was created");
    await raw.release();
  } catch (e) {
    console.log(`raw onnxruntime-node with executionProviders ['cuda']: ${(e as Error).message.split("\n")[0]}`);
  }
  const feeds = { input: { data: Float32Array.from({ length: 8 * 784 }, (_, i) => Math.sin(i) * 0.5), dims: [8, 1, 28, 28] } };
  const messages: string[] = [];
  const t0 = performance.now();
  const cuda = await createSession(model, { ep: "cuda", onFallback: (r) => messages.push(r) });
  console.log(`asked for cuda: got ${cuda.ep} in ${(performance.now() - t0).toFixed(0)} ms; fallback reason: ${cuda.fallbackReason ?? "none"}; onFallback calls: ${messages.length}`);
  const cpu = await createSession(model, { ep: "cpu" });
  const a = (await cuda.run(feeds)).logits.data as Float32Array;
  const b = (await cpu.run(feeds)).logits.data as Float32Array;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  console.log(`outputs: ${a.length} logits, max |cuda-session − cpu-session| = ${diff}`);
  await cuda.dispose();
  await cpu.dispose();
}

main().catch((e: unknown) => {
  console.error("CHECK FAILED:", e instanceof Error ? e.stack : e);
  process.exitCode = 1;
});
