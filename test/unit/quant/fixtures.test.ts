// The quality bar on real trained models (test/fixtures): default static INT8 keeps top-1 within 0.3 pp of FP32 on
// data/eval, calibrated on data/calib. Every fixture model in the manifest is checked, variants included (opset 9
// and 11, weights as Constant nodes, fp16 weights), and densenet, made to be hard for INT8 (it lost 0.6 pp before
// Concats read only by float BatchNorms stopped being re-quantized, engine/quant/registry.ts readOnlyByFloat).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { openData } from "../../../engine/data/readers";
import { Model } from "../../../engine/onnx/model";
import { quantizeDynamic, quantizeStatic } from "../../../engine/quant/index";
import { FIX, top1 } from "./eval";

const floatOps = (f: { opType: string }[]) => f.reduce<Record<string, number>>((m, x) => ((m[x.opType] = (m[x.opType] ?? 0) + 1), m), {});
const manifest = JSON.parse(readFileSync(path.join(FIX, "models", "manifest.json"), "utf8")) as Record<
  string,
  { file: string; input: string; output: string; inputShape: (string | number)[]; evalBatch?: number }
>;

const tmp = mkdtempSync(path.join(tmpdir(), "ptq-quant-fixtures-"));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

for (const [name, entry] of Object.entries(manifest)) {
  const file = path.join(FIX, "models", entry.file);
  // Image classifiers only: they share data/calib and data/eval (other fixtures, e.g. the char LM, have their own data).
  if (entry.inputShape.length !== 4) continue;
  const limitPp = 0.3;
  test(`fixture ${name}: default static INT8 within ${limitPp} pp of FP32`, { skip: !existsSync(file) && "fixture missing" }, async () => {
    const out = path.join(tmp, `${name}.int8.onnx`);
    const model = Model.loadSync(file);
    const data = openData(path.join(FIX, "data", "calib", "calib.npz"), model.proto, { batchSize: 32 });
    const summary = await quantizeStatic(file, out, data);
    // evalBatch: models whose behaviour depends on the batch (the If model's branch) are scored as the manifest says.
    const fp32 = await top1(file, entry.input, entry.output, entry.evalBatch);
    const int8 = await top1(out, entry.input, entry.output, entry.evalBatch);
    const dq = Model.loadSync(out).graph.node.filter((n) => n.opType === "DequantizeLinear").length;
    assert.ok(dq > 0, "the model was quantized");
    assert.ok(fp32 - int8 <= limitPp / 100 + 1e-9, `${name}: FP32 ${fp32} INT8 ${int8} (drop ${((fp32 - int8) * 100).toFixed(2)} pp); float ops: ${JSON.stringify(floatOps(summary.float))}`);
    console.log(`# ${name}: FP32 ${(fp32 * 100).toFixed(2)}%  INT8 ${(int8 * 100).toFixed(2)}%  quantized ${summary.quantized.length} nodes, float ${summary.float.length}`);
  });
}

/** Perplexity of the char LM fixture on data/lm/heldout.npy (feed [:, :64], score [:, 1:], as the manifest says). */
async function perplexity(file: string): Promise<number> {
  const { parseNpy } = await import("../../../engine/data/npy");
  const ort = await import("onnxruntime-node");
  const h = parseNpy(new Uint8Array(readFileSync(path.join(FIX, "data", "lm", "heldout.npy"))), "heldout.npy");
  const [n, w] = h.dims as [number, number];
  const all = h.data as BigInt64Array;
  const ids = new BigInt64Array(n * 64);
  for (let i = 0; i < n; i++) ids.set(all.subarray(i * w, i * w + 64), i * 64);
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 2 });
  const out = (await s.run({ input_ids: new ort.Tensor("int64", ids, [n, 64]) })).logits!;
  await s.release();
  const v = out.dims[2]!;
  const d = out.data as Float32Array;
  let nll = 0;
  for (let r = 0; r < n * 64; r++) {
    let mx = -Infinity;
    for (let k = 0; k < v; k++) mx = Math.max(mx, d[r * v + k]!);
    let z = 0;
    for (let k = 0; k < v; k++) z += Math.exp(d[r * v + k]! - mx);
    const target = Number(all[Math.floor(r / 64) * w + (r % 64) + 1]!);
    nll -= d[r * v + target]! - mx - Math.log(z);
  }
  return Math.exp(nll / (n * 64));
}

const lm = path.join(FIX, "models", "lm.onnx");
test("fixture lm: dynamic INT8 keeps held-out perplexity within 1 %", { skip: !existsSync(lm) && "fixture missing" }, async () => {
  const out = path.join(tmp, "lm.dynamic.onnx");
  const summary = await quantizeDynamic(lm, out);
  assert.ok(summary.quantized.length > 0);
  const fp32 = await perplexity(lm);
  const int8 = await perplexity(out);
  assert.ok(int8 / fp32 < 1.01, `perplexity FP32 ${fp32} INT8 ${int8}`);
  console.log(`# lm (dynamic): perplexity FP32 ${fp32.toFixed(4)}  INT8 ${int8.toFixed(4)}  quantized ${summary.quantized.length} MatMuls`);
});
