// 16-bit activations below opset 21: the rewrite writes onnxruntime's com.microsoft QuantizeLinear/DequantizeLinear
// (ai.onnx has 16-bit Q/DQ only from opset 21), and such a file runs in onnxruntime only. Where the model upgrades to
// opset 21 (engine/onnx/upgrade), the quantized model is upgraded and its Q/DQ moved to ai.onnx: the same
// computation in a standard file. On the PP-OCR recognisers widened by default (opset 11 → 13 → 21) the outputs are
// bit for bit those of the com.microsoft file, at the same speed (docs/quantization.md "Standard 16-bit Q/DQ").
import { forEachGraph } from "../onnx/graph";
import type { Model } from "../onnx/model";
import { upgradeOpset } from "../onnx/upgrade";
import { MS_DOMAIN } from "./qdq";
const QDQ = new Set(["QuantizeLinear", "DequantizeLinear"]);
/** The first ai.onnx opset with 16-bit QuantizeLinear/DequantizeLinear. */
export const SIXTEEN_BIT_QDQ_OPSET = 21;

/**
 * `model` (a quantized model) upgraded to opset 21 with its com.microsoft Q/DQ moved to ai.onnx, or undefined when it
 * has none, is already at 21, or does not upgrade (then why, for the summary). `model` itself is not changed.
 */
export function standardQdq(model: Model): { model: Model } | { why: string } | undefined {
  const opset = model.opset("") ?? 0;
  if (opset >= SIXTEEN_BIT_QDQ_OPSET) return undefined;
  let found = false;
  forEachGraph(model.graph, (g) => (found ||= g.node.some((n) => n.domain === MS_DOMAIN && QDQ.has(n.opType))));
  if (!found) return undefined;
  const up = model.clone();
  try {
    upgradeOpset(up, SIXTEEN_BIT_QDQ_OPSET);
  } catch (e) {
    return { why: e instanceof Error ? e.message.split("\n")[0]! : String(e) };
  }
  let others = false;
  forEachGraph(up.graph, (g) => {
    for (const n of g.node) {
      if (n.domain !== MS_DOMAIN) continue;
      if (QDQ.has(n.opType)) n.domain = "";
      else others = true;
    }
  });
  if (!others) up.proto.opsetImport = up.proto.opsetImport.filter((o) => o.domain !== MS_DOMAIN);
  return { model: up };
}
