// The quality bar on real trained models (test/fixtures): default static INT8 keeps top-1 within 0.3 pp of FP32 on
// data/eval, calibrated on data/calib. Every fixture model in the manifest is checked, variants included (opset 9
// and 11, weights as Constant nodes, fp16 weights).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { openData } from "../../../kernel/data/readers";
import { Model } from "../../../kernel/onnx/model";
import { quantizeStatic } from "../../../kernel/quant/index";
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
    assert.ok(fp32 - int8 <= 0.003, `${name}: FP32 ${fp32} INT8 ${int8} (drop ${((fp32 - int8) * 100).toFixed(2)} pp); float ops: ${JSON.stringify(floatOps(summary.float))}`);
    console.log(`# ${name}: FP32 ${(fp32 * 100).toFixed(2)}%  INT8 ${(int8 * 100).toFixed(2)}%  quantized ${summary.quantized.length} nodes, float ${summary.float.length}`);
  });
}
