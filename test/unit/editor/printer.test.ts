import { test } from "node:test";
import assert from "node:assert/strict";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import { printModel } from "../../../engine/onnx-text/printer";
import { bytesOf, floatTensor, graph, mlp, model, node, valueInfo } from "./build-model";

test("prints header, signature, initializers and nodes as onnx.printer lays them out", () => {
  // Round-trip through bytes: the printer sees exactly what a file on disk decodes to.
  const text = printModel(fromBinary(ModelProtoSchema, bytesOf(mlp())));
  const lines = text.split("\n");
  assert.deepEqual(lines.slice(0, 5), ["<", "   ir_version: 8,", '   opset_import: ["" : 13],', '   producer_name: "pytorch"', ">"]);
  assert.equal(lines[5], "main_graph (float[N,4] input) => (float[2,N] out_t)");
  assert.ok(lines.includes("      int64[2] shape = {-1, 2}"), text);
  assert.ok(lines.includes('   ["/fc1/MatMul"] "/fc1/MatMul_output_0" = MatMul (input, fc1.weight)'), text);
  assert.ok(lines.includes("   r = LeakyRelu <alpha: float = 0.1> (h)"), text);
  assert.ok(lines.includes("   out_t = Transpose <perm: ints = [1, 0]> (out)"), text);
  assert.equal(lines.filter((l) => /^   \S.* = \w+ [<(]/.test(l)).length, 6, "one line per node");
});

test("elides large initializers with their element count and bytes, prints small ones", () => {
  const text = printModel(mlp());
  assert.match(text, /float\[4,64\] fc1\.weight = \{\.\.\.\},  # 256 values, 1024 bytes elided/);
  const small = printModel(mlp(), { maxTensorValues: 1000 });
  assert.match(small, /float\[64\] fc1\.bias = \{0\.5, 0\.5,/);
  assert.ok(small.length > text.length * 2);
  const t = printModel(model(graph("g", [node("Identity", ["w"], ["y"])], [], [valueInfo("y", 1, [3])], [floatTensor("w", [3], [1.5, -0.25, 3e-8])])));
  assert.match(t, /float\[3\] w = \{1\.5, -0\.25, 3e-8\}/);
});

test("nests subgraphs, qualifies domains, quotes names the parser would not take bare", () => {
  const then = graph("then_g", [node("Identity", ["x"], ["y1"])], [], [valueInfo("y1", 1, [2])]);
  const els = graph("else_g", [node("Neg", ["x"], ["y2"])], [], [valueInfo("y2", 1, [2])]);
  const m = model(graph("g", [
    node("If", ["c"], ["y"], { then_branch: then, else_branch: els }, { name: 'if"><img onerror=alert(1)>' }),
    node("QGemm", ["y", "y"], ["onnx::Gemm_7"], { alpha: 1.5 }, { domain: "com.microsoft" }),
  ], [valueInfo("c", 9, []), valueInfo("x", 1, [2])], [valueInfo("onnx::Gemm_7", 1, [2])]));
  const text = printModel(m);
  assert.match(text, /\["if\\"><img onerror=alert\(1\)>"\] y = If </);
  assert.match(text, /\n      then_branch: graph = then_g \(\) => \(float\[2\] y1\)\n      \{\n         y1 = Identity \(x\)\n      \},\n/);
  assert.match(text, /\n      else_branch: graph = else_g/);
  assert.match(text, /\n   > \(c\)\n/);
  assert.match(text, /"onnx::Gemm_7" = com\.microsoft\.QGemm <alpha: float = 1\.5> \(y, y\)/);
  assert.match(text, /g \(bool\[\] c, float\[2\] x\) => \(float\[2\] "onnx::Gemm_7"\)/);
});
