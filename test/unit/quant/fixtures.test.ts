// The quality bar on real trained models (test/fixtures): default static INT8 keeps top-1 within 0.3 pp of FP32 on
// data/eval, calibrated on data/calib. Every fixture model in the manifest is checked, variants included (opset 9
// and 11, weights as Constant nodes, fp16 weights).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { parseNpy } from "../../../kernel/data/npy";
import { openData } from "../../../kernel/data/readers";
import { Model } from "../../../kernel/onnx/model";
import { quantizeStatic } from "../../../kernel/quant/index";

const FIX = path.join(__dirname, "..", "..", "fixtures");
const manifest = JSON.parse(readFileSync(path.join(FIX, "models", "manifest.json"), "utf8")) as Record<
  string,
  { file: string; input: string; output: string; inputShape: (string | number)[]; evalBatch?: number }
>;

function loadNpy(file: string) {
  return parseNpy(new Uint8Array(readFileSync(file)), file);
}

export async function top1(file: string, input: string, output: string, batch = 250): Promise<number> {
  const x = loadNpy(path.join(FIX, "data", "eval", "x.npy"));
  const y = loadNpy(path.join(FIX, "data", "eval", "y.npy"));
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 2, interOpNumThreads: 1 });
  const per = x.dims.slice(1).reduce((a, b) => a * b, 1);
  const n = x.dims[0]!;
  let correct = 0;
  for (let i = 0; i < n; i += batch) {
    const b = Math.min(batch, n - i);
    const feed = new ort.Tensor("float32", (x.data as Float32Array).subarray(i * per, (i + b) * per), [b, ...x.dims.slice(1)]);
    const out = (await s.run({ [input]: feed }))[output]!;
    const classes = out.dims[out.dims.length - 1]!;
    const d = out.data as Float32Array;
    for (let r = 0; r < b; r++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (d[r * classes + c]! > d[r * classes + best]!) best = c;
      if (BigInt(best) === BigInt((y.data as BigInt64Array | Int32Array)[i + r]!)) correct++;
    }
  }
  await s.release();
  return correct / n;
}

const tmp = mkdtempSync(path.join(tmpdir(), "ptq-quant-fixtures-"));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

for (const [name, entry] of Object.entries(manifest)) {
  const file = path.join(FIX, "models", entry.file);
  test(`fixture ${name}: default static INT8 within 0.3 pp of FP32`, { skip: !existsSync(file) && "fixture missing" }, async () => {
    const out = path.join(tmp, `${name}.int8.onnx`);
    const model = Model.loadSync(file);
    const data = openData(path.join(FIX, "data", "calib", "calib.npz"), model.proto, { batchSize: 32 });
    const summary = await quantizeStatic(file, out, data);
    // evalBatch: models whose behaviour depends on the batch (the If model's branch) are scored as the manifest says.
    const fp32 = await top1(file, entry.input, entry.output, entry.evalBatch);
    const int8 = await top1(out, entry.input, entry.output, entry.evalBatch);
    const dq = Model.loadSync(out).graph.node.filter((n) => n.opType === "DequantizeLinear").length;
    assert.ok(dq > 0, "the model was quantized");
    assert.ok(fp32 - int8 <= 0.003, `${name}: FP32 ${fp32} INT8 ${int8} (drop ${((fp32 - int8) * 100).toFixed(2)} pp); float: ${JSON.stringify(summary.float)}`);
    console.log(`# ${name}: FP32 ${(fp32 * 100).toFixed(2)}%  INT8 ${(int8 * 100).toFixed(2)}%  quantized ${summary.quantized.length} nodes, float ${summary.float.length}`);
  });
}
