// HardSwish written out as x·Clip(x+3, 0, 6)/6 (engine/quant/hardswish, the float baseline of bench/int8-speed.ts
// fp32-fused and `npm run demo`): rewritten as x·HardSigmoid(x) in each form exporters write it, the same outputs from
// real onnxruntime sessions; left alone where any piece differs or is read elsewhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import type { ModelProto, NodeProto } from "onnx-buf";
import { DataType } from "../../../engine/onnx/dtype";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { makeTensor } from "../../../engine/onnx/tensor";
import { Model } from "../../../engine/onnx/model";
import { fuseHardSwish, hardSwishAsHardSigmoid } from "../../../engine/quant/hardswish";
import { makeModel, opCounts, runModel, valueInfo } from "./build";

const F = DataType.FLOAT;
const N = 64;
const scalar = (name: string, v: number, dims: number[] = []) => makeTensor(name, F, dims, [v]);

interface Form {
  add?: [string, string];
  clip?: "inputs" | "attributes";
  mul?: [string, string];
  last?: NodeProto;
  opset?: number;
  extra?: NodeProto[];
  outputs?: string[];
}

/** y = x · Clip(x + 3, 0, 6) / 6 on x [64], in the form given (defaults: as paddle2onnx writes it at opset 13). */
function hardSwish(form: Form = {}): ModelProto {
  const clip =
    form.clip === "attributes"
      ? makeNode("Clip", ["p3"], ["r6"], { name: "relu6", attributes: [attr.float("min", 0), attr.float("max", 6)] })
      : makeNode("Clip", ["p3", "zero", "six"], ["r6"], { name: "relu6" });
  const nodes = [
    makeNode("Add", form.add ?? ["x", "three"], ["p3"], { name: "plus3" }),
    clip,
    makeNode("Mul", form.mul ?? ["x", "r6"], ["m"], { name: "times" }),
    form.last ?? makeNode("Div", ["m", "six"], ["y"], { name: "div6" }),
    ...(form.extra ?? []),
  ];
  const read = new Set(nodes.flatMap((n) => n.input));
  const constants = [scalar("three", 3, [1]), scalar("zero", 0), scalar("six", 6), scalar("sixth", 1 / 6, [1]), scalar("two", 2)];
  return makeModel(
    nodes,
    [valueInfo("x", F, [N])],
    (form.outputs ?? ["y"]).map((o) => valueInfo(o, F, [N])),
    constants.filter((t) => read.has(t.name)),
    form.opset ?? 13,
  );
}

/** Every x from −5 to 5 (both knees and the flat parts). */
const feeds = () => ({ x: new ort.Tensor("float32", Float32Array.from({ length: N }, (_, i) => -5 + (10 * i) / (N - 1)), [N]) });

async function rewritten(m: ModelProto): Promise<{ count: number; ops: Record<string, number>; drift: number; inits: string[] }> {
  const before = (await runModel(m, feeds(), "disabled")).y!.data as Float32Array;
  const { rewritten: count, constants } = hardSwishAsHardSigmoid(m.graph!, undefined);
  const read = new Set(m.graph!.node.flatMap((n) => n.input));
  m.graph!.initializer = m.graph!.initializer.filter((t) => read.has(t.name) || !constants.includes(t.name));
  const after = (await runModel(m, feeds(), "disabled")).y!.data as Float32Array;
  let drift = 0;
  before.forEach((v, i) => (drift = Math.max(drift, Math.abs(v - after[i]!))));
  return { count, ops: opCounts(m), drift, inits: m.graph!.initializer.map((t) => t.name) };
}

test("each exporter's form becomes HardSigmoid(x; 1/6, 1/2) · x with the same outputs", async () => {
  const forms: [string, Form][] = [
    ["Div by 6, Clip bounds as inputs", {}],
    ["constants first, Mul(clip, x), Mul by a float32 1/6", { add: ["three", "x"], mul: ["r6", "x"], last: makeNode("Mul", ["sixth", "m"], ["y"], { name: "mul6" }) }],
    ["opset 10: Clip bounds as attributes", { clip: "attributes", opset: 10 }],
  ];
  for (const [what, form] of forms) {
    const m = hardSwish(form);
    const r = await rewritten(m);
    assert.equal(r.count, 1, what);
    assert.deepEqual(r.ops, { HardSigmoid: 1, Mul: 1 }, what);
    assert.ok(r.drift < 1e-6, `${what}: outputs moved by ${r.drift}`);
    const hs = m.graph!.node.find((n) => n.opType === "HardSigmoid")!;
    assert.deepEqual(hs.input, ["x"], what);
    assert.deepEqual(m.graph!.node.find((n) => n.opType === "Mul")!.output, ["y"], `${what}: the last node's output is kept`);
  }
});

test("left alone: other constants, a piece read elsewhere or a graph output, a Clip of another tensor", async () => {
  const cases: [string, Form][] = [
    ["Add 2, not 3", { add: ["x", "two"] }],
    ["Div by 2, not 6", { last: makeNode("Div", ["m", "two"], ["y"], { name: "div2" }) }],
    ["the Clip's output also read by a Neg", { extra: [makeNode("Neg", ["r6"], ["n"], { name: "neg" })], outputs: ["y", "n"] }],
    ["x + 3 a graph output", { outputs: ["y", "p3"] }],
    ["the Mul reads another tensor than x", { mul: ["p3", "r6"] }],
  ];
  for (const [what, form] of cases) {
    const m = hardSwish(form);
    const ops = opCounts(m);
    const r = await rewritten(m);
    assert.equal(r.count, 0, what);
    assert.deepEqual(r.ops, ops, what);
    assert.equal(r.drift, 0, what);
  }
});

test("fuseHardSwish: a copy with Constant-node constants rewritten, the given model untouched", async () => {
  const proto = hardSwish();
  // As paddle2onnx writes them: the 3, 0 and 6 as Constant nodes, not initializers.
  const constants = proto.graph!.initializer.map((t) => makeNode("Constant", [], [t.name], { name: `const_${t.name}`, attributes: [attr.tensor("value", t)] }));
  proto.graph!.node.unshift(...constants);
  proto.graph!.initializer = [];
  const model = Model.fromProto(proto);
  const before = opCounts(model.proto);
  const { model: fused, rewritten } = fuseHardSwish(model);
  assert.equal(rewritten, 1);
  assert.deepEqual(opCounts(fused.proto), { HardSigmoid: 1, Mul: 1 }, "the Constants nothing reads any more are gone");
  assert.deepEqual(fused.graph.initializer.map((t) => t.name), [], "and so are their initializers");
  assert.deepEqual(opCounts(model.proto), before, "the model given is unchanged");
  const a = (await runModel(model.proto, feeds(), "disabled")).y!.data as Float32Array;
  const b = (await runModel(fused.proto, feeds(), "disabled")).y!.data as Float32Array;
  a.forEach((v, k) => assert.ok(Math.abs(v - b[k]!) < 1e-6, `x ${k}: ${v} vs ${b[k]}`));
});
