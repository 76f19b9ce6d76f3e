// Top-1 accuracy of a Fashion-MNIST fixture model on test/fixtures/data/eval, with onnxruntime-node.
import { readFileSync } from "node:fs";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { parseNpy } from "../../../engine/data/npy";

export const FIX = path.join(__dirname, "..", "..", "fixtures");

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

