// engine/onnx/shape-infer.ts against onnxruntime on the real models of the corpus (docs/corpus.md): each model's
// inputs get the catalog's concrete shape, its value_info is dropped (inference alone), and every node output
// whose inferred shape is fully known must be the shape onnxruntime produces (engine/runtime/shapes.ts runs the
// model with every node output exposed). Skips when the corpus cache is absent (`npm run corpus:fetch`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { loadCatalog, modelPath } from "../../bench/corpus/catalog";
import { Model, makeValueInfo, valueInfoTensor } from "../../engine/onnx";
import { inferModelShapes } from "../../engine/onnx/shape-infer";
import { intermediateShapes } from "../../engine/runtime/shapes";
import { dtypeFromOrt } from "../../engine/runtime/tensors";

const catalog = loadCatalog();

for (const m of catalog.models) {
  const file = modelPath(m);
  test(`shape inference agrees with onnxruntime on ${m.id}`, { skip: existsSync(file) ? false : `corpus model absent: ${file}` }, async () => {
    const model = Model.loadSync(file).clone();
    const g = model.graph;
    g.valueInfo = [];
    g.input = g.input.map((v) => {
      const given = m.inputs.find((i) => i.name === v.name);
      const t = valueInfoTensor(v);
      return given && t ? makeValueInfo(v.name, t.elemType, given.shape) : v;
    });
    const inferred = inferModelShapes(model.proto).tensors;
    const real = await intermediateShapes(model, { threads: 1 });
    const wrong: string[] = [];
    let known = 0;
    for (const r of real) {
      const s = inferred.get(r.name);
      if (!r.shape || !s?.shape || !s.shape.every((d) => typeof d === "number")) continue;
      known++;
      if (JSON.stringify(s.shape) !== JSON.stringify(r.shape)) wrong.push(`${r.name} (${r.op}): inferred [${s.shape}], onnxruntime [${r.shape}]`);
      const dt = r.dtype ? dtypeFromOrt(r.dtype) : undefined;
      if (dt !== undefined && s.elemType !== undefined && dt !== s.elemType) wrong.push(`${r.name} (${r.op}): inferred type ${s.elemType}, onnxruntime ${r.dtype}`);
    }
    console.log(`${m.id}: ${known}/${real.length} node outputs with a fully known inferred shape`);
    assert.deepEqual(wrong, []);
  });
}
