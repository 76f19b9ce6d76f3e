// 4-bit embedding tables: GatherBlockQuantized (and the opset-21 DequantizeLinear → Gather form) must give exactly
// what a float Gather over the dequantized table gives, in onnxruntime-node.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { DataType, Model, attr, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, tensorToFloat32 } from "../../../engine/onnx";
import { createSession } from "../../../engine/runtime/session";
import { dequantizeBlockwise, quantizeBlockwise } from "../../../engine/lowbit/intblock";
import { lowBitModel } from "../../../engine/lowbit/index";

function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
}

const [V, D] = [20, 48];

/** ids[B,S] → Gather(E[20,48]) → y[B,S,48]; plus tables that must stay float: an odd-width one, one Gathered on
 *  axis 1, and one also read by a MatMul (tied weights). */
function embeddingModel(): Model {
  const r = rng(21);
  const t = (name: string, dims: number[]) => makeTensor(name, DataType.FLOAT, dims, Float32Array.from({ length: dims[0]! * dims[1]! }, () => r()));
  const g = makeGraph(
    "gather_test",
    [
      makeNode("Gather", ["E", "ids"], ["y"], { name: "embed" }),
      makeNode("Gather", ["Odd", "ids"], ["y_odd"], { name: "odd" }),
      makeNode("Gather", ["Cols", "ids"], ["y_cols"], { name: "cols", attributes: [attr.int("axis", 1)] }),
      makeNode("Gather", ["Tied", "ids"], ["y_tied"], { name: "tied" }),
      makeNode("MatMul", ["x", "Tied"], ["z"], { name: "head" }),
    ],
    [makeValueInfo("ids", DataType.INT64, ["b", "s"]), makeValueInfo("x", DataType.FLOAT, ["b", V])],
    [
      makeValueInfo("y", DataType.FLOAT, ["b", "s", D]),
      makeValueInfo("y_odd", DataType.FLOAT, ["b", "s", 7]),
      makeValueInfo("y_cols", DataType.FLOAT, [V, "b", "s"]),
      makeValueInfo("y_tied", DataType.FLOAT, ["b", "s", 16]),
      makeValueInfo("z", DataType.FLOAT, ["b", 16]),
    ],
    { initializers: [t("E", [V, D]), t("Odd", [V, 7]), t("Cols", [V, V]), t("Tied", [V, 16])] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
}

const ids = { data: BigInt64Array.from([0n, 5n, 19n, 5n, 7n, 3n]), dims: [2, 3] };
const x = { data: Float32Array.from({ length: 2 * V }, (_, i) => i / 10), dims: [2, V] };

async function runY(model: Model): Promise<Float32Array> {
  const s = await createSession(model.toBytes(), { optimization: "all", threads: 1 });
  try {
    return (await s.run({ ids, x })).y.data as Float32Array;
  } finally {
    await s.dispose();
  }
}

test("a 4-bit embedding table gathers exactly the dequantized rows, for each form, block size and symmetry", async () => {
  const fp32 = embeddingModel();
  const e = tensorToFloat32(fp32.graph.initializer.find((t) => t.name === "E")!);
  for (const format of ["matmulnbits", "qdq"] as const) {
    for (const [blockSize, symmetric] of [[16, true], [32, false], [32, true]] as const) {
      const { model, report } = lowBitModel(fp32, { mode: "int4", includeGather: true, blockSize, symmetric, format });
      const layer = report.layers.find((l) => l.opType === "Gather")!;
      assert.deepEqual([layer.node, layer.k, layer.n, layer.partialBlock], ["embed", D, V, blockSize === 32]);
      const op = format === "qdq" ? "DequantizeLinear" : "GatherBlockQuantized";
      assert.equal(model.graph.node.filter((n) => n.opType === op).length, 1 + (format === "qdq" ? 1 : 0), `${op} nodes`); // qdq: + head MatMul's DQ
      assert.equal(model.graph.initializer.some((t) => t.name === "E"), false, "the float table is gone");
      // Reference: quantize the table the same way (transposed, blocks along the embedding axis) and gather.
      const et = Float32Array.from({ length: V * D }, (_, i) => e[(i % V) * D + Math.floor(i / V)]!);
      const dq = dequantizeBlockwise(quantizeBlockwise(et, D, V, { bits: 4, blockSize, symmetric, algorithm: "rtn" }));
      const got = await runY(model);
      const rows = Array.from(ids.data, Number);
      rows.forEach((r, i) => {
        for (let d = 0; d < D; d++) {
          const want = dq[d * V + r]!;
          assert.ok(Math.abs(got[i * D + d]! - want) < 1e-6, `${format} bs=${blockSize} sym=${symmetric} row ${r}[${d}]: ${got[i * D + d]} vs ${want}`);
        }
      });
      assert.ok(layer.sqnrDb > 15, `${layer.sqnrDb} dB`);
    }
  }
});

test("tables that cannot be done stay float with the reason; without includeGather no Gather is touched", () => {
  const { report } = lowBitModel(embeddingModel(), { mode: "int4", includeGather: true, blockSize: 16 });
  const reasons = Object.fromEntries(report.skipped.map((s) => [s.node, s.reason]));
  assert.match(reasons.odd!, /embedding dimension 7 is not a multiple of 2/);
  assert.match(reasons.cols!, /axis 1/);
  assert.match(reasons.tied!, /also read by other nodes/);
  const plain = lowBitModel(embeddingModel(), { mode: "int4", blockSize: 16 });
  assert.equal(plain.report.layers.some((l) => l.opType === "Gather"), false);
  assert.equal(plain.model.graph.node.filter((n) => n.opType === "Gather").length, 4);
});

test("the LM fixture's token embedding becomes GatherBlockQuantized and the model still runs", async () => {
  const lm = await Model.load(path.join(__dirname, "..", "..", "fixtures", "models", "lm.onnx"));
  const { model, report } = lowBitModel(lm, { mode: "int4", includeGather: true });
  const gather = report.layers.filter((l) => l.opType === "Gather");
  assert.deepEqual(gather.map((l) => [l.weight, l.k, l.n]), [["tok.weight", 64, 96]]);
  assert.equal(report.skipped.some((s) => s.opType === "Gather"), false, "shape Gathers are not weights and are not listed");
  assert.equal(model.graph.node.filter((n) => n.opType === "GatherBlockQuantized").length, 1);
  const s = await createSession(model.toBytes(), { threads: 1 });
  try {
    const out = await s.run({ input_ids: { data: BigInt64Array.from({ length: 64 }, (_, i) => BigInt(i % 96)), dims: [1, 64] } });
    assert.deepEqual(out.logits.dims, [1, 64, 96]);
    assert.ok((out.logits.data as Float32Array).every(Number.isFinite));
  } finally {
    await s.dispose();
  }
});
