import { test } from "node:test";
import assert from "node:assert/strict";
import { accuracyCellSource, benchmarkSite } from "../../../src/editor/benchmarkLens";

test("lens sites: a benchmark( call or a // @benchmark marker, not the import; models named in the cell", () => {
  const cell = `import { benchmark } from "ptq";\nconst a = "models/cnn.onnx";\nawait benchmark({ fp32: a, int8: 'models/cnn.int8.onnx' })`;
  assert.deepEqual(benchmarkSite(cell), { line: 2, models: ["models/cnn.onnx", "models/cnn.int8.onnx"] });
  assert.deepEqual(benchmarkSite("// @benchmark\nrun()"), { line: 0, models: [] });
  assert.equal(benchmarkSite(`import { benchmark } from "ptq";\nconsole.log(1)`), undefined);
  assert.equal(benchmarkSite("const benchmarks = 3"), undefined);
});

test("compare-accuracy cell evaluates the models the benchmark cell names", () => {
  const src = accuracyCellSource(["a.onnx", "b.onnx"]);
  assert.match(src, /^import { evaluate, loadModel, readNpy } from "ptq";\nconst models = \["a.onnx", "b.onnx"\];/);
  assert.match(src, /await evaluate\(models, { inputs: { \[input\]: readNpy\("x.npy"\) } }\)$/);
});
