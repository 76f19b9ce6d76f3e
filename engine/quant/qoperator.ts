// QOperator format: QLinearConv / QLinearMatMul / com.microsoft QLinearAdd ... instead of Q/DQ pairs. onnxruntime's
// own QDQ fusions already turn our QDQ placement into exactly these ops, so the QOperator model is the QDQ model
// lowered by onnxruntime at level 'extended' and saved ('all' would add CPU-layout-specific nchwc ops). Like ORT's
// QOperator output it runs in onnxruntime only; QDQ stays the portable default.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Model } from "../onnx/model";
import { makeTempDir, removeTempDir } from "../onnx/tempdir";
import { createSession } from "../runtime/session";

export async function lowerToQOperator(qdq: Model): Promise<Model> {
  const dir = makeTempDir("ptq-qop-");
  try {
    const file = path.join(dir, "qoperator.onnx");
    const s = await createSession(qdq, { optimization: "extended", optimizedModelPath: file, threads: 1 });
    await s.dispose();
    return Model.fromBytes(new Uint8Array(readFileSync(file)), qdq.dir === undefined ? {} : { dir: qdq.dir });
  } finally {
    removeTempDir(dir);
  }
}
