// What analyze() sends the Quantization State view, on the real fixture CNN: the conversion's tensors with their
// types and ranges, each analysed tensor's SQNR on it, the worst one found, and the line the view writes.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { Model } from "../../../engine/onnx";
import { calibrate, convert, prepare, release } from "../../../engine/quant";
import { readNpyFolder } from "../../../engine/data/readers";
import { analyze, takeBatches } from "../../../engine/analysis/analyze";
import { EXACT_DB, quantStateOfAnalysis } from "../../../kernel/quant-state-display";
import { describeEntry, formatDb, groupByNode, worstEntry } from "../../../src/views/quantStateModel";

const FIX = path.join(__dirname, "..", "..", "fixtures");

test("analyze → Quantization State entries: every analysed tensor carries its SQNR, the worst is the minimum", async () => {
  const model = await Model.load(path.join(FIX, "models", "cnn.onnx"));
  const prepared = await prepare(model);
  const calib = await takeBatches(readNpyFolder(path.join(FIX, "data", "calib", "npy"), model.proto), 8);
  await calibrate(prepared, calib);
  await release(prepared);
  const result = await analyze(prepared, calib.slice(0, 4));
  const j = result.toJSON();
  const entries = quantStateOfAnalysis(j, prepared, result.summary);

  // Each quantized tensor of the conversion is listed with its type; Conv weights per-channel int8 with their SQNR.
  const summaryTensors = result.summary!.quantized.flatMap((n) => n.tensors.map((t) => `${n.name}/${t.name}`));
  for (const key of summaryTensors) assert.ok(entries.some((e) => `${e.node}/${e.tensor}` === key && e.quantized), `${key} listed`);
  for (const w of j.weights.filter((w) => w.opType === "Conv")) {
    const e = entries.find((x) => x.tensor === w.tensor)!;
    assert.equal(e.role, "weight");
    assert.equal(e.granularity, "per-channel");
    assert.equal(e.sqnrDb, w.sqnrDb);
  }
  // An activation's SQNR lands on the entries of the nodes that read it, with its calibrated range and method.
  const act = j.activations[0]!;
  const listed = entries.filter((e) => e.tensor === act.tensor);
  assert.ok(listed.some((e) => e.role === "input"), `${act.tensor} is read by a quantized node`);
  for (const r of listed) {
    assert.ok(r.role === "input" || r.role === "output", `${r.node}: ${r.role}`);
    assert.equal(r.sqnrDb, act.sqnrDb);
    assert.equal(r.method, prepared.config.calibration.method);
    assert.deepEqual(r.range, [prepared.ranges.get(act.tensor)!.min, prepared.ranges.get(act.tensor)!.max]);
  }
  // A tensor a quantized node writes (MaxPool shares its input's scale) is that node's output, not its input.
  for (const e of entries.filter((x) => x.role === "output" && x.quantized)) {
    const node = prepared.model.graph.node.find((n) => n.name === e.node);
    assert.ok(node?.output.includes(e.tensor), `${e.tensor} is an output of ${e.node}`);
  }
  // The graph output is added as the end-to-end error, not as a quantized tensor.
  const out = entries.find((e) => e.tensor === j.outputs[0]!.tensor && e.role === "output")!;
  assert.equal(out.quantized, false);
  assert.equal(out.sqnrDb, j.outputs[0]!.sqnrDb);

  const measured = [...j.weights, ...j.biases, ...j.activations, ...j.outputs].map((e) => e.sqnrDb).filter(Number.isFinite);
  const worst = worstEntry(entries)!;
  assert.equal(worst.sqnrDb, Math.min(...measured));
  assert.equal(worst.sqnrDb, result.worst(1)[0]!.sqnrDb, "the view's worst is analyze's worst");
  assert.match(describeEntry(worst), /SQNR -?\d+\.\d dB$/);
  assert.ok(groupByNode(entries).some((g) => g.entries.includes(worst)));
  // Everything crosses jsonrpc as JSON: no Infinity or NaN may turn into null on the way.
  const wire = JSON.parse(JSON.stringify(entries)) as typeof entries;
  for (const e of wire) if ("sqnrDb" in e) assert.equal(typeof e.sqnrDb, "number", `${e.tensor}: SQNR survives JSON`);
});

test("an exact tensor travels as EXACT_DB and reads 'exact'; float entries still show their SQNR", () => {
  const exact = { tensor: "w", kind: "weight" as const, node: "n", opType: "Conv", sqnrDb: Infinity, mse: 0, cosine: 1, maxAbs: 0, count: 4 };
  const [e] = quantStateOfAnalysis({ weights: [exact], biases: [], activations: [], outputs: [], warnBelowDb: 20 });
  assert.equal(e!.sqnrDb, EXACT_DB);
  assert.equal(formatDb(e!.sqnrDb!), "exact");
  assert.equal(describeEntry({ node: "g", op: "Gemm", tensor: "y", role: "output", quantized: false, reason: "graph output", sqnrDb: 12.34 }), "float · graph output · SQNR 12.3 dB");
  assert.equal(worstEntry([{ node: "a", op: "Relu", tensor: "x", role: "input", quantized: true, sqnrDb: null as unknown as number }]), undefined, "a null from the wire is no measurement");
});

test("convert() in a cell (the ptq module's) sends the conversion's tensors to the Quantization State view", async () => {
  const api = await import("../../../kernel/api");
  const { setSink } = await import("../../../kernel/display");
  const sent: { source: string; tensors: { tensor: string; quantized: boolean; sqnrDb?: number; reason?: string }[] }[] = [];
  setSink({ display() {}, update() {}, progress() {}, model() {}, histograms() {}, quant: (q) => sent.push(q) });
  try {
    const file = path.join(FIX, "models", "cnn.onnx");
    const model = await Model.load(file);
    const prepared = await prepare(model, { exclude: [/Gemm$/] });
    await calibrate(prepared, await takeBatches(readNpyFolder(path.join(FIX, "data", "calib", "npy"), model.proto), 4));
    await release(prepared);
    const int8 = await api.convert(prepared);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.source, file);
    const tensors = sent[0]!.tensors;
    assert.ok(tensors.filter((t) => t.quantized).length >= int8.summary.quantized.length);
    assert.deepEqual(int8.summary, (await convert(prepared)).summary, "the summary rides on the notebook's model");
    assert.equal(Object.keys(int8).includes("summary"), false, "not enumerable: a Model as before");
    assert.ok(tensors.some((t) => !t.quantized && /exclude/.test(t.reason ?? "")), "the excluded Gemm is listed as float, with why");
    assert.ok(tensors.every((t) => t.sqnrDb === undefined), "no SQNR before analyze()");
  } finally {
    setSink(undefined);
  }
});
