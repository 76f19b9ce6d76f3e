// Widths other than 4: MatMulNBits bits=2/8 packing checked byte by byte, and every width × format × symmetry
// (MatMul and Gather) run in onnxruntime-node against a float model holding the dequantized weights.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DataType, Model, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from "../../../engine/onnx";
import { createSession } from "../../../engine/runtime/session";
import { dequantizeBlockwise, quantizeBlockwise, type BlockQuantized } from "../../../engine/lowbit/intblock";
import { packMatMulNBits } from "../../../engine/lowbit/pack";
import { lowBitModel } from "../../../engine/lowbit/index";

function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
}

test("MatMulNBits packing at 2 and 8 bits: codes lowest bits first per column block, zero points likewise", () => {
  // K = 20, N = 1, block 16: two blocks, the second partial (padded with its zero point).
  const codes = Uint8Array.from({ length: 20 }, (_, i) => i % 4);
  const q2: BlockQuantized = { k: 20, n: 1, bits: 2, blockSize: 16, codes, scales: Float32Array.from([1, 2]), zeroPoints: Uint8Array.from([1, 3]) };
  const p2 = packMatMulNBits(q2);
  assert.deepEqual(p2.bDims, [1, 2, 4]);
  // Block 0: codes 0,1,2,3 repeated → each byte 0b11_10_01_00 = 0xe4. Block 1: 0,1,2,3 then 12 padding codes of 3.
  assert.deepEqual([...p2.b], [0xe4, 0xe4, 0xe4, 0xe4, 0xe4, 0xff, 0xff, 0xff]);
  assert.deepEqual([...p2.zeroPoints!], [1 | (3 << 2)]);
  const q8: BlockQuantized = { ...q2, bits: 8, codes: Uint8Array.from({ length: 20 }, (_, i) => 200 + i), zeroPoints: Uint8Array.from([128, 128]) };
  const p8 = packMatMulNBits(q8);
  assert.deepEqual(p8.bDims, [1, 2, 16]);
  assert.deepEqual([...p8.b.subarray(0, 17)], [...Array.from({ length: 17 }, (_, i) => 200 + i)]);
  assert.deepEqual([...p8.b.subarray(20)], Array(12).fill(128), "padding decodes to 0");
  assert.equal(p8.zeroPoints, undefined, "all default (128): left out");
  assert.throws(() => packMatMulNBits({ ...q2, bits: 3 }), /2, 4 and 8 bits, not 3/);
});

const [K, N, V] = [80, 24, 12];

/** x[b,80] → MatMul(W[80,24]) → y;  ids → Gather(E[12,80]) → e. */
function model(w: Float32Array, e: Float32Array): Model {
  const g = makeGraph(
    "widths",
    [makeNode("MatMul", ["x", "W"], ["y"], { name: "fc" }), makeNode("Gather", ["E", "ids"], ["e"], { name: "embed" })],
    [makeValueInfo("x", DataType.FLOAT, ["b", K]), makeValueInfo("ids", DataType.INT64, ["n"])],
    [makeValueInfo("y", DataType.FLOAT, ["b", N]), makeValueInfo("e", DataType.FLOAT, ["n", K])],
    { initializers: [makeTensor("W", DataType.FLOAT, [K, N], w), makeTensor("E", DataType.FLOAT, [V, K], e)] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
}

const transpose = (a: Float32Array, r: number, c: number) => Float32Array.from({ length: r * c }, (_, i) => a[(i % r) * c + Math.floor(i / r)]!);

test("2-, 4- and 8-bit weights run in onnxruntime-node and compute exactly what their dequantized floats compute", async () => {
  const r = rng(17);
  const w = Float32Array.from({ length: K * N }, () => r() * 0.2);
  const e = Float32Array.from({ length: V * K }, () => r());
  const feeds = { x: { data: Float32Array.from({ length: 3 * K }, () => r()), dims: [3, K] }, ids: { data: BigInt64Array.from([11n, 0n, 4n]), dims: [3] } };
  const sqnrs: number[] = [];
  for (const bits of [2, 4, 8] as const) {
    for (const format of ["matmulnbits", "qdq"] as const) {
      for (const symmetric of [true, false]) {
        const opts = { bits, blockSize: 32, symmetric, algorithm: "rtn" as const };
        const { model: m, report } = lowBitModel(model(w, e), { mode: "int4", includeGather: true, format, ...opts });
        assert.equal(report.layers.length, 2);
        if (format === "qdq") assert.equal(m.opset(), bits === 2 ? 25 : 21);
        const ref = model(dequantizeBlockwise(quantizeBlockwise(w, K, N, opts)), transpose(dequantizeBlockwise(quantizeBlockwise(transpose(e, V, K), K, V, opts)), K, V));
        const run = async (mm: Model) => {
          // onnxruntime fuses DQ → MatMul into MatMulNBits with int8 activations unless told to keep accuracy level 0.
          const s = await createSession(mm.toBytes(), { threads: 1, config: { qdq_matmulnbits_accuracy_level: "0" } });
          try {
            const out = await s.run(feeds);
            return [out.y.data as Float32Array, out.e.data as Float32Array];
          } finally {
            await s.dispose();
          }
        };
        const [want, got] = [await run(ref), await run(m)];
        for (const t of [0, 1]) {
          const d = Math.max(...got[t]!.map((v, i) => Math.abs(v - want[t]![i]!)));
          assert.ok(d < 1e-5, `bits ${bits} ${format} sym=${symmetric} ${t ? "Gather" : "MatMul"}: max diff ${d}`);
        }
        if (format === "matmulnbits" && symmetric) sqnrs.push(report.layers[0]!.sqnrDb);
      }
    }
  }
  // Each extra bit buys ~6 dB: 2 → 4 → 8 bits.
  assert.ok(sqnrs[0]! < 12 && sqnrs[1]! > 20 && sqnrs[2]! > 45, sqnrs.join(", "));
});

test("2- and 8-bit MatMulNBits at accuracy level 0 come with a note that level 4 is the fast one", () => {
  const w = Float32Array.from({ length: K * N }, (_, i) => Math.sin(i));
  const e = Float32Array.from({ length: V * K }, (_, i) => Math.cos(i));
  const note = (o: Parameters<typeof lowBitModel>[1]) => lowBitModel(model(w, e), o).report.notes.some((n) => /accuracy level 4 runs/.test(n));
  assert.equal(note({ mode: "int4", bits: 8 }), true);
  assert.equal(note({ mode: "int4", bits: 8, accuracyLevel: 4 }), false);
  assert.equal(note({ mode: "int4" }), false);
  assert.throws(() => lowBitModel(model(w, e), { mode: "int4", bits: 3 as 4 }), /bits must be 2, 4 or 8/);
});
