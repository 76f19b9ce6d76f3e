// skimGraph: a model file's inputs, small nodes and constants read without its weights; sessions on a path use it to
// tell a scalar input from one of unknown rank and to find the constants an integer input is tested against.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DataType, Model, attr, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo, OnnxError } from "../../../engine/onnx";
import { comparedConstants } from "../../../engine/onnx/graph";
import { readTensor } from "../../../engine/onnx/tensor";
import { skimGraph, skimUnreadInitializers } from "../../../engine/onnx/skim";
import { inputSpecsOf } from "../../../engine/data/feeds";
import { randomData } from "../../../engine/data/random";
import { zeroFeeds } from "../../../engine/runtime/shapes";
import { createSession } from "../../../engine/runtime/session";

/**
 * y = x·W + big·0 + sel · 1, sel = Cast(Equal(mode, 16000)) + Cast(Equal(8000, mode)): x [batch, 2048], a scalar int64 `mode`,
 * `u` of unknown rank (summed away). W is a 32 KiB initializer, `big` a 16 KiB Constant node: both past what a skim reads.
 */
function modeModel(): Model {
  const w = makeTensor("W", DataType.FLOAT, [2048, 4], Float32Array.from({ length: 8192 }, (_, i) => ((i % 7) - 3) / 8));
  const big = makeTensor("bigv", DataType.FLOAT, [4096], new Float32Array(4096));
  const g = makeGraph(
    "mode",
    [
      makeNode("Constant", [], ["big"], { attributes: [attr.tensor("value", big)] }),
      makeNode("Constant", [], ["k8000"], { attributes: [attr.tensor("value", makeTensor("k", DataType.INT64, [], new BigInt64Array([8000n])))] }),
      makeNode("MatMul", ["x", "W"], ["xw"]),
      makeNode("ReduceSum", ["big"], ["bigs"], { attributes: [attr.int("keepdims", 0)] }),
      makeNode("Equal", ["mode", "k16000"], ["is16"]),
      makeNode("Equal", ["k8000", "mode"], ["is8"]),
      makeNode("Equal", ["mode", "k16000"], ["again"]),
      makeNode("Cast", ["is16"], ["f16"], { attributes: [attr.int("to", DataType.FLOAT)] }),
      makeNode("Cast", ["is8"], ["f8"], { attributes: [attr.int("to", DataType.FLOAT)] }),
      makeNode("Cast", ["again"], ["fa"], { attributes: [attr.int("to", DataType.FLOAT)] }),
      makeNode("Sum", ["f16", "f8", "fa", "bigs"], ["sel"]),
      makeNode("ReduceSum", ["u"], ["us"], { attributes: [attr.int("keepdims", 0)] }),
      makeNode("Mul", ["us", "zero"], ["u0"]),
      makeNode("Add", ["xw", "sel"], ["y0"]),
      makeNode("Add", ["y0", "u0"], ["y"]),
    ],
    [makeValueInfo("x", DataType.FLOAT, ["batch", 2048]), makeValueInfo("mode", DataType.INT64, []), makeValueInfo("u", DataType.FLOAT)],
    [makeValueInfo("y", DataType.FLOAT, ["batch", 4])],
    { initializers: [w, makeTensor("k16000", DataType.INT64, [], new BigInt64Array([16000n])), makeTensor("zero", DataType.FLOAT, [], [0])] },
  );
  return Model.fromProto(makeModel(g, { opsets: { "": 13 } }));
}

function withFile(bytes: Uint8Array, fn: (file: string) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-skim-"));
  const file = path.join(dir, "m.onnx");
  writeFileSync(file, bytes);
  return Promise.resolve(fn(file)).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test("skimGraph reads a file's inputs, small nodes and small constants whole, a weight's name only", () => {
  const model = modeModel();
  return withFile(model.toBytes(), (file) => {
    const g = skimGraph(file);
    assert.deepEqual(g.input, model.graph.input);
    // Every node but the 16 KiB Constant, in order.
    assert.deepEqual(g.node, model.graph.node.filter((n) => n.output[0] !== "big"));
    assert.deepEqual(g.initializer.map((t) => t.name), ["W", "k16000", "zero"]);
    assert.equal(g.initializer[0]!.rawData.length + g.initializer[0]!.floatData.length, 0, "W is not read");
    assert.deepEqual(g.initializer[1], model.graph.initializer[1]);
    // The constants `mode` is tested against, from an initializer and a Constant node, each once, either operand order.
    assert.deepEqual(comparedConstants(g, "mode"), [16000, 8000]);
    assert.deepEqual(comparedConstants(model.graph, "mode"), [16000, 8000]);
    assert.deepEqual(comparedConstants(g, "x"), []);
  });
});

test("skimUnreadInitializers: the initializers no node reads and no graph input or output names; none where a node was too large to read", async () => {
  const model = modeModel();
  const g = model.graph;
  // One nobody reads (a weight, so only its name is skimmed), one that is a graph output, one a graph input's default.
  g.initializer.push(makeTensor("orphan", DataType.FLOAT, [2048], new Float32Array(2048)), makeTensor("shown", DataType.FLOAT, [1], [1]), makeTensor("u", DataType.FLOAT, [1], [0]));
  g.output.push(makeValueInfo("shown", DataType.FLOAT, [1]));
  // The 16 KiB Constant node is read without its value.
  await withFile(model.toBytes(), (file) => assert.deepEqual(skimUnreadInitializers(file), ["orphan"]));
  // A large If: its bodies (unread) may read any name, so nothing is said to be unread.
  const body = (name: string) => makeGraph(name, [makeNode("Identity", ["orphan"], [`${name}_out`])], [], [makeValueInfo(`${name}_out`, DataType.FLOAT, [2048])], { initializers: [makeTensor(`${name}_pad`, DataType.FLOAT, [2048], new Float32Array(2048))] });
  g.node.push(makeNode("If", ["cond"], ["chosen"], { attributes: [attr.graph("then_branch", body("then")), attr.graph("else_branch", body("else"))] }));
  g.initializer.push(makeTensor("cond", DataType.BOOL, [], [1]));
  await withFile(model.toBytes(), (file) => assert.equal(skimUnreadInitializers(file), undefined));
});

test("skimGraph refuses a truncated file by name", () => {
  const bytes = modeModel().toBytes();
  return withFile(bytes.subarray(0, bytes.length - 100), (file) => {
    assert.throws(() => skimGraph(file), (e: unknown) => e instanceof OnnxError && e.message.includes(file) && /not a valid ONNX file/.test(e.message));
  });
});

test("a session on a path or a Model tells a scalar input from one of unknown rank and knows what an integer is tested against", () => {
  const model = modeModel();
  return withFile(model.toBytes(), async (file) => {
    for (const source of [file, model]) {
      const s = await createSession(source, { threads: 1 });
      try {
        const by = Object.fromEntries(s.inputs.map((i) => [i.name, i]));
        assert.deepEqual(by.mode!.shape, []);
        assert.deepEqual(by.mode!.choices, [16000, 8000]);
        assert.equal(by.u!.shape, undefined);
        assert.equal(by.x!.choices, undefined);
        // Zero inputs hold the first tested value (sel = 1 + 0 + 1 on every output), generated ones each in turn.
        const shaped = model.clone();
        shaped.graph.input[2] = makeValueInfo("u", DataType.FLOAT, [2, 2]);
        const feeds = zeroFeeds(shaped);
        assert.deepEqual([...(feeds.mode!.data as BigInt64Array)], [16000n]);
        const { y } = await s.run(feeds);
        assert.deepEqual([...(y!.data as Float32Array)], [2, 2, 2, 2]);
        const batches = [...randomData(inputSpecsOf(s.inputs), 3, { shapes: { u: [1] }, warn: () => undefined })];
        assert.deepEqual(batches.map((b) => [...(b.mode!.data as BigInt64Array)]), [[16000n], [8000n], [16000n]]);
        assert.deepEqual(batches[0]!.mode!.dims, []);
      } finally {
        await s.dispose();
      }
    }
    assert.deepEqual(readTensor(model.graph.initializer[1]!).data, new BigInt64Array([16000n]));
  });
});
