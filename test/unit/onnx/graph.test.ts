import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DataType,
  OnnxError,
  addNodes,
  attr,
  checkGraph,
  constantValue,
  constantsToInitializers,
  consumers,
  makeGraph,
  makeNode,
  makeTensor,
  makeValueInfo,
  outerScopeInputs,
  producers,
  readTensor,
  removeNodes,
  replaceNode,
  replaceUses,
  topologicalSort,
  uniqueName,
} from "../../../engine/onnx";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { TensorProtoSchema, type GraphProto } from "onnx-buf";
import { constantNodeTensor, logitsOrOutputs, lookUpInScope, onCompared, readersAnywhere, unmaskedBehind } from "../../../engine/onnx/graph";
import { createSession } from "../../../engine/runtime/session";
import { smallMlp, withIf } from "./helpers";

test("producers and consumers, including outer values read by subgraphs", () => {
  const g = smallMlp().graph;
  assert.equal(producers(g).get("z")!.name, "add");
  assert.deepEqual(consumers(g).get("z")!.map((n) => n.name), ["mul"]);
  assert.deepEqual(consumers(g).get("W")!.map((n) => n.name), ["mm"]);
  const ifg = withIf().graph;
  assert.deepEqual([...outerScopeInputs(ifg.node[0]!.attribute[0]!.g!)].sort(), ["one", "x"]);
  assert.deepEqual(consumers(ifg).get("one")!.map((n) => n.name), ["branch"], "If reads `one` through its branches");
});

test("uniqueName avoids every name in the graph and its subgraphs", () => {
  const g = withIf().graph;
  assert.equal(uniqueName(g, "t_out"), "t_out_1"); // used only inside the then-branch
  assert.equal(uniqueName(g, "fresh"), "fresh");
  const taken = new Set(["a", "a_1"]);
  assert.equal(uniqueName(g, "a", taken), "a_2");
  assert.ok(taken.has("a_2"));
});

test("topologicalSort orders a shuffled graph stably; a cycle is an error naming a node", async () => {
  const m = smallMlp();
  const g = m.graph;
  g.node.reverse();
  topologicalSort(g);
  assert.deepEqual(g.node.map((n) => n.name), ["const_k", "mm", "add", "mul", "relu"]); // ties keep the given order
  const s = await createSession(m);
  await s.dispose();
  // relu feeds back into mm: a cycle
  const c = smallMlp().graph;
  c.node[0]!.input[0] = "y";
  assert.throws(() => topologicalSort(c), (e: unknown) => e instanceof OnnxError && /cycle through node "mm" \(MatMul\)/.test(e.message));
});

test("topologicalSort: a node reading two outputs of one producer is no cycle (Split → Add, DynamicQuantizeLinear → MatMulInteger)", () => {
  const g = smallMlp().graph;
  // relu's output y is split in two halves that one Add reads back: y → Split → (a, b) → Add → s.
  const split = makeNode("Split", ["y"], ["ya", "yb"], { name: "split" });
  const add = makeNode("Add", ["ya", "yb"], ["s"], { name: "sum" });
  g.node.unshift(add, split);
  topologicalSort(g);
  assert.deepEqual(g.node.map((n) => n.name).slice(-2), ["split", "sum"]);
});

test("checkGraph reports dangling inputs, missing outputs and double definitions by name", () => {
  const g = smallMlp().graph;
  checkGraph(g);
  g.node[1]!.input[1] = "bias_missing";
  assert.throws(() => checkGraph(g), /node "add" \(Add\) reads "bias_missing", which no node, graph input or initializer provides/);
  const g2 = smallMlp().graph;
  g2.node[4]!.output[0] = "h";
  assert.throws(() => checkGraph(g2), /node "relu" \(Relu\) writes "h", which is already defined/);
  const g3 = withIf().graph;
  g3.node[0]!.attribute[1]!.g!.node[0]!.input[1] = "nope";
  assert.throws(() => checkGraph(g3), /node "\(unnamed\)"|reads "nope"/);
});

test("constantValue finds initializers and Constant outputs; constantsToInitializers moves them", async () => {
  const m = smallMlp();
  const g = m.graph;
  assert.deepEqual(Array.from(readTensor(constantValue(g, "b")!).data as Float32Array), [0.5, -0.25, 0]);
  const k = constantValue(g, "k")!;
  assert.equal(k.name, "k");
  assert.deepEqual(Array.from(readTensor(k).data as Float32Array), [2, 2, 2]);
  assert.equal(constantValue(g, "h"), undefined);
  const before = await run(m);
  assert.equal(constantsToInitializers(g), 1);
  assert.deepEqual(g.node.map((n) => n.opType), ["MatMul", "Add", "Mul", "Relu"]);
  assert.deepEqual(g.initializer.map((t) => t.name), ["W", "b", "k"]);
  assert.deepEqual(await run(m), before);
});

test("add, remove, replace nodes and rewire uses", async () => {
  const m = smallMlp();
  const g = m.graph;
  const before = await run(m);
  // Insert an Identity after z and make readers use it (except the Identity itself).
  const id = makeNode("Identity", ["z"], ["z_id"], { name: "id" });
  addNodes(g, [id], g.node[2]);
  replaceUses(g, "z", "z_id", (n) => n === id);
  assert.deepEqual(g.node.find((n) => n.name === "mul")!.input, ["z_id", "k"]);
  assert.deepEqual(await run(m), before);
  replaceNode(g, g.node.find((n) => n.name === "relu")!, [makeNode("Relu", ["z2"], ["y"], { name: "relu2" })]);
  removeNodes(g, [id]);
  replaceUses(g, "z_id", "z");
  assert.deepEqual(await run(m), before);
  assert.throws(() => replaceNode(g, id, []), /node "id" \(Identity\) is not in graph "mlp"/);
  assert.equal(DataType.FLOAT, 1);
});

async function run(m: ReturnType<typeof smallMlp>): Promise<number[]> {
  const s = await createSession(m, { threads: 1 });
  try {
    const out = await s.run({ x: { data: Float32Array.from([1, -2, 3, 0.5]), dims: [1, 4] } });
    return Array.from(out.y!.data as Float32Array);
  } finally {
    await s.dispose();
  }
}

test("logitsOrOutputs: the tensor a final Softmax reads, through data movement and float Casts, also a Softmax onnxruntime inlined; not through an integer Cast", () => {
  const graph = (nodes: ReturnType<typeof makeNode>[], outputs: string[]) =>
    makeGraph("g", nodes, [makeValueInfo("x", DataType.FLOAT, ["n", 4])], outputs.map((o) => makeValueInfo(o, DataType.FLOAT, ["n", 4])));
  const cast = (from: string, to: string, type: number) => makeNode("Cast", [from], [to], { attributes: [attr.int("to", type)] });
  // Softmax → Reshape → Cast(float16): the logits are x.
  const direct = graph([makeNode("Softmax", ["x"], ["p"]), makeNode("Identity", ["p"], ["q"]), cast("q", "half", DataType.FLOAT16)], ["half", "x"]);
  assert.deepEqual(logitsOrOutputs(direct), ["x", "x"]);
  // The inlined form: Exp(x − ReduceMax x) / ReduceSum, then a Cast, as onnxruntime writes a float16 model's Softmax.
  const inlined = graph(
    [
      makeNode("ReduceMax", ["x"], ["m"]),
      makeNode("Sub", ["x", "m"], ["d"]),
      makeNode("Exp", ["d"], ["e"]),
      makeNode("ReduceSum", ["e", "axes"], ["s"]),
      makeNode("Div", ["e", "s"], ["p"]),
      cast("p", "out", DataType.FLOAT16),
    ],
    ["out"],
  );
  assert.deepEqual(logitsOrOutputs(inlined), ["x"]);
  // Not a Softmax: the Exp's input is not x minus its own maximum, or the Cast is to integers.
  const other = graph([makeNode("ReduceMax", ["x"], ["m"]), makeNode("Sub", ["m", "x"], ["d"]), makeNode("Exp", ["d"], ["e"]), makeNode("ReduceSum", ["e"], ["s"]), makeNode("Div", ["e", "s"], ["p"])], ["p"]);
  assert.deepEqual(logitsOrOutputs(other), ["p"]);
  const toInt = graph([makeNode("Softmax", ["x"], ["p"]), cast("p", "ids", DataType.INT64)], ["ids"]);
  assert.deepEqual(logitsOrOutputs(toInt), ["ids"]);
});

test("unmaskedBehind: the values a comparison's mask multiplies or selects (a detector's peak mask), through data movement; not a product of two values, not a Where between two computed values", () => {
  const cast = (from: string, to: string, type: number) => makeNode("Cast", [from], [to], { attributes: [attr.int("to", type)] });
  const made = (nodes: ReturnType<typeof makeNode>[]) => producers(makeGraph("g", nodes, [makeValueInfo("x", DataType.FLOAT, [1, 8, 8])], []));
  // M-LSD's: s = Sigmoid(x); scores = Reshape(s) · Cast(Equal(s, MaxPool(s))).
  const peak = [
    makeNode("Sigmoid", ["x"], ["s"]),
    makeNode("MaxPool", ["s"], ["m"]),
    makeNode("Equal", ["s", "m"], ["eq"]),
    cast("eq", "keep", DataType.FLOAT),
    makeNode("Reshape", ["s", "shape"], ["sr"]),
    makeNode("Reshape", ["keep", "shape"], ["kr"]),
    makeNode("Mul", ["sr", "kr"], ["scores"]),
    makeNode("Identity", ["scores"], ["out"]),
  ];
  assert.equal(unmaskedBehind(made(peak), "out"), "sr");
  assert.equal(unmaskedBehind(made(peak), "s"), undefined, "no mask");
  // The mask first, and Where(c, x, 0) / Where(c, 0, x) with the 0 an initializer or a Constant node's.
  assert.equal(unmaskedBehind(made([...peak.slice(0, 6), makeNode("Mul", ["kr", "sr"], ["scores"])]), "scores"), "sr");
  assert.equal(unmaskedBehind(made([...peak.slice(0, 3), makeNode("Where", ["eq", "s", "zero"], ["w"])]), "w"), "s");
  assert.equal(unmaskedBehind(made([...peak.slice(0, 3), makeNode("Constant", [], ["zero"]), makeNode("Where", ["eq", "zero", "s"], ["w"])]), "w"), "s");
  // Not masks: a product of two computed values, a Where between two computed values, a Cast of a float.
  assert.equal(unmaskedBehind(made([...peak.slice(0, 2), makeNode("Mul", ["s", "m"], ["p"])]), "p"), undefined);
  assert.equal(unmaskedBehind(made([...peak.slice(0, 3), makeNode("Where", ["eq", "s", "m"], ["w"])]), "w"), undefined);
  assert.equal(unmaskedBehind(made([...peak.slice(0, 2), cast("m", "mc", DataType.FLOAT), makeNode("Mul", ["s", "mc"], ["p"])]), "p"), undefined);
  assert.equal(onCompared({ logits: 1, unmasked: 2 }), " (the Softmax output on its logits, 2 masked outputs before their masks)");
  assert.equal(onCompared({ logits: 0, unmasked: 0 }), "");
});

test("constantNodeTensor names the tensor it returns after the node's output, leaving the node's own tensor as it was", () => {
  // A decoded message, as a Constant read from a file holds.
  const t = fromBinary(TensorProtoSchema, toBinary(TensorProtoSchema, makeTensor("", DataType.FLOAT, [2], [1, 2])));
  const node = makeNode("Constant", [], ["c"], { attributes: [attr.tensor("value", t)] });
  const got = constantNodeTensor(node)!;
  assert.equal(got.name, "c");
  assert.equal(node.attribute[0]!.t!.name, "", "the file's Constant node is unchanged");
  assert.deepEqual([...readTensor(got).data], [1, 2]);
  for (const field of ["rawData", "floatData", "int64Data", "stringData", "externalData"] as const) assert.notEqual(got[field], undefined, `${field}: a whole message`);
});

test("lookUpInScope finds a body's outer initializer in the graph holding it, unless the body computes or takes the name; readersAnywhere counts every graph", () => {
  const m = withIf();
  const [thenG, elseG] = m.graph.node[0]!.attribute.map((a) => a.g!);
  const initializer = (g: GraphProto, name: string) => g.initializer.find((t) => t.name === name);
  const main = { graph: m.graph };
  const found = lookUpInScope({ graph: thenG!, parent: main }, "one", initializer);
  assert.equal(found?.owner, m.graph);
  assert.equal(found?.value.name, "one");
  // A body that computes "one" itself hides the main graph's.
  elseG!.node.unshift(makeNode("Identity", ["x"], ["one"]));
  assert.equal(lookUpInScope({ graph: elseG!, parent: main }, "one", initializer), undefined);
  assert.equal(lookUpInScope({ graph: elseG!, parent: main }, "nothing", initializer), undefined);
  // "x": the then body's Add, the else body's Sub and its new Identity; "one": the Add and the Sub.
  assert.equal(readersAnywhere(m.graph, "x"), 3);
  assert.equal(readersAnywhere(m.graph, "one"), 2);
  assert.equal(readersAnywhere(m.graph, "y"), 1, "a graph output counts");
});
