// Dynamic mode leaves the model's smallest Convs float (engine/quant/dynamic SMALL_CONV_SHARE): smallest first, within
// a share of every weighted node's weight elements; the others are stored int8 as before.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Model } from "../../../engine/onnx/model";
import { attr, makeNode } from "../../../engine/onnx/proto";
import { SMALL_CONV_SHARE, smallestConvs } from "../../../engine/quant/dynamic";
import { quantizeDynamicModel, resolveConfig } from "../../../engine/quant/index";
import { GraphScope } from "../../../engine/quant/subgraph";
import { init, model, rand } from "../recovery/build";

/** x [1, 4, 8, 8] → Conv "a" (8×4×3×3: 288 weights) → Conv "b" (16×8×3×3: 1152) → depthwise Conv "dw" (16×1×3×3:
 *  144) → Flatten → MatMul "fc" (1024 × `fcOut`). */
function net(fcOut: number): Model {
  const nodes = [
    makeNode("Conv", ["x", "wa", "ba"], ["ya"], { name: "a", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
    makeNode("Conv", ["ya", "wb", "bb"], ["yb"], { name: "b", attributes: [attr.ints("pads", [1, 1, 1, 1])] }),
    makeNode("Conv", ["yb", "wd", "bd"], ["yd"], { name: "dw", attributes: [attr.int("group", 16), attr.ints("pads", [1, 1, 1, 1])] }),
    makeNode("Flatten", ["yd"], ["flat"], { name: "flatten" }),
    makeNode("MatMul", ["flat", "wf"], ["y"], { name: "fc" }),
  ];
  const inits = [
    init("wa", [8, 4, 3, 3], rand(288, 1)),
    init("ba", [8], rand(8, 2)),
    init("wb", [16, 8, 3, 3], rand(1152, 3)),
    init("bb", [16], rand(16, 4)),
    init("wd", [16, 1, 3, 3], rand(144, 5)),
    init("bd", [16], rand(16, 6)),
    init("wf", [1024, fcOut], rand(1024 * fcOut, 7)),
  ];
  return model(nodes, ["x", [1, 4, 8, 8]], ["y", [1, fcOut]], inits);
}

test("the smallest Convs within the share stay float, smallest first; larger ones are stored int8", async () => {
  // Weights: 288 + 1152 + 144 + 1024·100 = 103 984; the share's budget 1040: "dw" (144) and "a" (288), not "b" (1152).
  assert.equal(SMALL_CONV_SHARE, 0.01, "the figures below are for a 1 % share");
  const m = net(100);
  const small = smallestConvs(new GraphScope(m.graph));
  const names = new Set([...small.weights].map((t) => t.name));
  assert.deepEqual([...names].sort(), ["wa", "wd"]);
  assert.ok(Math.abs(small.share - 432 / 103984) < 1e-9);
  assert.ok(small.share <= SMALL_CONV_SHARE);

  const { summary } = await quantizeDynamicModel(m, resolveConfig(), false);
  const float = new Map(summary.float.map((f) => [f.name, f.reason]));
  assert.match(float.get("a") ?? "", /one of the model's smallest Convs \(288 weights; .*0\.42 % of its weights\)/);
  assert.match(float.get("dw") ?? "", /smallest Convs \(144 weights/);
  const quantized = new Set(summary.quantized.map((q) => q.name));
  assert.ok(quantized.has("b") && quantized.has("fc"), `b and fc quantized: ${[...quantized]}`);
});

test("a model whose Convs hold most of its weights keeps them all int8 (beyond the 128-weight floor)", async () => {
  // With a 1024 × 1 MatMul the total is 2608: the share's budget (26) fits no Conv.
  const m = net(1);
  assert.equal(smallestConvs(new GraphScope(m.graph)).weights.size, 0);
  const { summary } = await quantizeDynamicModel(m, resolveConfig(), false);
  const quantized = new Set(summary.quantized.map((q) => q.name));
  for (const n of ["a", "b", "dw"]) assert.ok(quantized.has(n), `${n} quantized`);
});
