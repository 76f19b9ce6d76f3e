import { test } from "node:test";
import assert from "node:assert/strict";
import { addExclude, excludedNames, overridePath, parseOverrides } from "../../../src/editor/graphOverrides";

test("the override file sits beside the model: cnn.onnx → cnn.ptq.json", () => {
  assert.equal(overridePath("/w/models/cnn.onnx"), "/w/models/cnn.ptq.json");
  assert.equal(overridePath("/w/models/cnn.int8.ONNX"), "/w/models/cnn.int8.ptq.json");
  assert.equal(overridePath("/w/models/model"), "/w/models/model.ptq.json");
});

test("keep in float adds the node to exclude once and keeps the file's other keys", () => {
  const first = addExclude(undefined, "/conv1/Conv", "f.json");
  assert.deepEqual(JSON.parse(first.text), { exclude: ["/conv1/Conv"] });
  const old = JSON.stringify({ weightType: "int8", exclude: ["a"], calibration: { method: "mse" } });
  const next = addExclude(old, 'b"<script>', "f.json");
  assert.deepEqual(JSON.parse(next.text), { weightType: "int8", calibration: { method: "mse" }, exclude: ["a", 'b"<script>'] });
  assert.deepEqual(addExclude(next.text, "a", "f.json").exclude, ["a", 'b"<script>']);
  assert.deepEqual(parseOverrides("  ", "f.json"), { exclude: [], rest: {} });
});

test("regex selectors written by hand (ptq quantize --config's format) are kept; only exact names are marked", () => {
  const next = addExclude(JSON.stringify({ exclude: [{ regex: "^/attn/" }, "a"] }), "b", "f.json");
  assert.deepEqual(JSON.parse(next.text), { exclude: [{ regex: "^/attn/" }, "a", "b"] });
  assert.deepEqual(excludedNames(parseOverrides(next.text, "f.json")), ["a", "b"]);
});

test("a broken override file is refused with its name and what to do, never overwritten", () => {
  assert.throws(() => addExclude("{not json", "n", "/w/cnn.ptq.json"), /\/w\/cnn\.ptq\.json is not valid JSON .*fix or delete it/);
  assert.throws(() => addExclude("[1]", "n", "/w/cnn.ptq.json"), /\/w\/cnn\.ptq\.json must hold a JSON object/);
  assert.throws(() => addExclude('{"exclude": "conv"}', "n", "/w/cnn.ptq.json"), /"exclude" must be a list of node names/);
  assert.throws(() => addExclude('{"exclude": [1]}', "n", "/w/cnn.ptq.json"), /"exclude" must be a list/);
  assert.throws(() => addExclude('{"exclude": [{"re": "x"}]}', "n", "/w/cnn.ptq.json"), /\{"regex": "…"\} selectors/);
});
