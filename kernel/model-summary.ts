// The ModelState notification's payload for a loaded model: inputs, outputs and nodes with op, output shapes
// (from value_info, when the file has them) and parameter counts, so the views can list layers without
// re-reading the file.
import type { ModelSummary, ValueSummary } from "./protocol";
import type { Model } from "../engine/onnx/model";

type Proto = Model["proto"];
type ValueInfo = NonNullable<Proto["graph"]>["input"][number];

const ELEM_TYPES: Record<number, string> = {
  1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string", 9: "bool",
  10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16", 21: "uint4", 22: "int4", 23: "float4e2m1",
};

function shapeOf(v: ValueInfo): (number | string | null)[] {
  const t = v.type?.value;
  if (t?.case !== "tensorType") return [];
  return (t.value.shape?.dim ?? []).map((d) =>
    d.value.case === "dimValue" ? Number(d.value.value) : d.value.case === "dimParam" ? d.value.value : null,
  );
}

function valueSummary(v: ValueInfo): ValueSummary {
  const t = v.type?.value;
  const type = t?.case === "tensorType" ? (ELEM_TYPES[t.value.elemType] ?? `type ${t.value.elemType}`) : (t?.case ?? "unknown");
  return { name: v.name, type, shape: shapeOf(v) };
}

export function modelSummary(model: Model): ModelSummary {
  const g = model.proto.graph;
  const params = new Map<string, number>();
  for (const t of g?.initializer ?? []) params.set(t.name, t.dims.reduce((a, d) => a * Number(d), 1));
  const shapes = new Map<string, (number | string | null)[]>();
  for (const v of [...(g?.valueInfo ?? []), ...(g?.output ?? [])]) shapes.set(v.name, shapeOf(v));
  const opset = model.proto.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx")?.version;
  return {
    source: model.path ?? "<in memory>",
    opset: opset === undefined ? undefined : Number(opset),
    inputs: (g?.input ?? []).filter((i) => !params.has(i.name)).map(valueSummary),
    outputs: (g?.output ?? []).map(valueSummary),
    nodes: (g?.node ?? []).map((n, i) => ({
      name: n.name || `${n.opType}_${i}`,
      op: n.domain && n.domain !== "ai.onnx" ? `${n.domain}.${n.opType}` : n.opType,
      inputs: n.input,
      outputs: n.output,
      shapes: n.output.map((o) => shapes.get(o) ?? []),
      params: n.input.reduce((a, name) => a + (params.get(name) ?? 0), 0),
    })),
  };
}
