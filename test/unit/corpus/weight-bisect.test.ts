// bench/weight-bisect.ts's file logic on the fixture CNN's static INT8 file: which weighted nodes' initializers
// differ between two files, B's weights taken into A, and the refusal of files whose graphs differ.
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { weightGroups, withWeightsOf } from "../../../bench/weight-bisect";
import { Model } from "../../../engine/onnx/model";
import { makeTensor } from "../../../engine/onnx/tensor";
import { batches, quantize } from "../recovery/build";

const CNN = path.join(__dirname, "../../fixtures/models/cnn.onnx");

async function quantizedCnn(): Promise<Model> {
  const m = await Model.load(CNN);
  const input = m.graph.input[0]!.name;
  return (await quantize(m, batches(input, [4, 1, 28, 28], 2, 7, 0, 1))).q;
}

/** A copy of `q` with one code of the first weight behind `node`'s DequantizeLinear moved by one step. */
function nudged(q: Model, node: string): { model: Model; initializer: string } {
  const m = q.clone();
  const conv = m.graph.node.find((n) => n.name === node)!;
  const dq = m.graph.node.find((n) => n.output.includes(conv.input[1]!))!;
  const t = m.graph.initializer.find((x) => x.name === dq.input[0])!;
  const v = m.readTensor(t);
  const codes = Array.from(v.data as Uint8Array | Int8Array, Number);
  codes[0] = codes[0]! > 0 ? codes[0]! - 1 : codes[0]! + 1;
  m.graph.initializer = m.graph.initializer.map((x) => (x === t ? makeTensor(t.name, t.dataType, t.dims.map(Number), codes) : x));
  return { model: m, initializer: t.name };
}

test("weightGroups names the weighted node whose codes differ, and only it", async () => {
  const q = await quantizedCnn();
  assert.deepEqual(weightGroups(q, q.clone()), [], "a file against its copy: nothing differs");
  const convs = q.graph.node.filter((n) => n.opType === "Conv");
  assert.ok(convs.length >= 2, "the fixture CNN has Convs");
  const target = convs[1]!.name;
  const { model: other, initializer } = nudged(q, target);
  const groups = weightGroups(q, other);
  assert.equal(groups.length, 1);
  assert.equal(groups[0]!.node, target);
  assert.deepEqual(groups[0]!.initializers, [initializer]);
});

test("withWeightsOf takes the other file's initializers for the given groups and leaves the first file as it was", async () => {
  const q = await quantizedCnn();
  const { model: other, initializer } = nudged(q, q.graph.node.filter((n) => n.opType === "Conv")[0]!.name);
  const mixed = withWeightsOf(q, other, weightGroups(q, other));
  const codes = (m: Model) => Array.from(m.readTensor(m.graph.initializer.find((t) => t.name === initializer)!).data as ArrayLike<number>);
  assert.deepEqual(codes(mixed), codes(other));
  assert.notDeepEqual(codes(q), codes(other), "the first file keeps its own codes");
  assert.deepEqual(weightGroups(mixed, other), [], "nothing left to differ");
  assert.equal(withWeightsOf(q, other, []).graph.initializer.length, q.graph.initializer.length);
});

test("weightGroups refuses files whose graphs differ, naming the node", async () => {
  const q = await quantizedCnn();
  const other = q.clone();
  other.graph.node = other.graph.node.slice(0, -1);
  assert.throws(() => weightGroups(q, other), /graphs differ at node \d+ .*only weights may differ/);
});
