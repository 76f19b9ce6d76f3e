// Tiny real models built in code for the analysis tests: a linear classifier in FP32 and the same classifier with
// its weight stored as int8 behind a DequantizeLinear (a genuine QDQ model onnxruntime runs with int8 weights).

import { writeFileSync } from "node:fs";
import path from "node:path";
import { DataType } from "../../../engine/onnx/dtype";
import { Model } from "../../../engine/onnx/model";
import { makeGraph, makeModel, makeNode, makeValueInfo } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { seededRandom } from "../../../engine/data/random";
import { tempDir } from "../../temp";

export const D = 32;
export const C = 5;

function weights(seed: number): { w: Float32Array; b: Float32Array } {
  const r = seededRandom(seed);
  return { w: Float32Array.from({ length: D * C }, () => r() * 2 - 1), b: Float32Array.from({ length: C }, () => r() * 0.2 - 0.1) };
}

function save(dir: string, name: string, proto: ReturnType<typeof makeModel>): string {
  const file = path.join(dir, name);
  writeFileSync(file, Model.fromProto(proto).toBytes());
  return file;
}

/** Writes fp32.onnx and int8.onnx (per-tensor symmetric int8 weight, QDQ) into a fresh temp folder. */
export function buildClassifierPair(bits = 8): { dir: string; fp32: string; int8: string } {
  const dir = tempDir("ptq-analysis-");
  const { w, b } = weights(3);
  const io = [makeValueInfo("x", DataType.FLOAT, ["batch", D])];
  const out = [makeValueInfo("logits", DataType.FLOAT, ["batch", C])];
  const fp32 = makeModel(
    makeGraph("clf", [makeNode("MatMul", ["x", "W"], ["mm"]), makeNode("Add", ["mm", "B"], ["logits"])], io, out, {
      initializers: [makeTensor("W", DataType.FLOAT, [D, C], w), makeTensor("B", DataType.FLOAT, [C], b)],
    }),
  );
  // Coarse quantization (fewer levels than int8 allows) so the quantized model really disagrees sometimes.
  const levels = 2 ** (bits - 1) - 1;
  const scale = Math.max(...w.map(Math.abs)) / levels;
  const q = Int8Array.from(w, (v) => Math.round(v / scale));
  const int8 = makeModel(
    makeGraph(
      "clf_q",
      [makeNode("DequantizeLinear", ["Wq", "Ws", "Wz"], ["W"]), makeNode("MatMul", ["x", "W"], ["mm"]), makeNode("Add", ["mm", "B"], ["logits"])],
      io,
      out,
      {
        initializers: [
          makeTensor("Wq", DataType.INT8, [D, C], q),
          makeTensor("Ws", DataType.FLOAT, [], [scale]),
          makeTensor("Wz", DataType.INT8, [], [0]),
          makeTensor("B", DataType.FLOAT, [C], b),
        ],
      },
    ),
  );
  return { dir, fp32: save(dir, "fp32.onnx", fp32), int8: save(dir, "int8.onnx", int8) };
}

/** n seeded samples with labels = the FP32 model's argmax, with every 7th label moved, so accuracy is < 1. */
export function labelledSamples(n: number): { x: Float32Array; y: BigInt64Array } {
  const r = seededRandom(11);
  const { w, b } = weights(3);
  const x = Float32Array.from({ length: n * D }, () => r() * 2 - 1);
  const y = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestV = -Infinity;
    for (let c = 0; c < C; c++) {
      let s = b[c]!;
      for (let k = 0; k < D; k++) s += x[i * D + k]! * w[k * C + c]!;
      if (s > bestV) [best, bestV] = [c, s];
    }
    y[i] = BigInt(i % 7 === 0 ? (best + 1) % C : best);
  }
  return { x, y };
}

/** Writes a little-endian .npy (version 1) file: enough for float32 and int64 test data. */
export function writeNpy(file: string, data: Float32Array | BigInt64Array, dims: number[]): void {
  const descr = data instanceof Float32Array ? "<f4" : "<i8";
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims.join(", ")}${dims.length === 1 ? "," : ""}), }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n"; // pad so the data starts on a 64-byte boundary
  const head = Buffer.alloc(10);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  head.writeUInt16LE(header.length, 8);
  writeFileSync(file, Buffer.concat([head, Buffer.from(header, "latin1"), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}
