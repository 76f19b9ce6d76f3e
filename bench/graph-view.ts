// First paint and interaction of the ONNX editor's graph view, headless: the editor page (the same HTML the
// extension writes, CSP included) with the graph bundle, in Debian's chromium through playwright-core, outside VS
// Code. Per model: extraction in node (what the extension host does), then in the page the dagre layout and the SVG
// render up to the next frame (svg[data-layout-ms], [data-paint-ms]), then the time a wheel zoom and a drag pan take
// to reach the screen, a search, and the analysis overlay: the time from an "analysis" message (every node given an
// SQNR, as the extension sends after analyze()) to the frame with the nodes recoloured, then a node's histogram drawn
// in the details pane. Also times the layout alone in node.
//
//   node --import tsx bench/graph-view.ts [model.onnx | synthetic:N ...]   (default: the corpus' models over 300 nodes)
// synthetic:N is a chain of residual blocks (Conv, Relu, Conv, Add with a skip edge) of about N nodes, to find
// where first paint gets too slow for the graph to be the editor's first view (GRAPH_DEFAULT_MAX_NODES).
//   PTQ_CHROMIUM=/path/to/chromium to use another browser; PTQ_GRAPH_SCREENSHOTS=DIR saves a screenshot per model.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import os from "node:os";
import path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { ModelProtoSchema } from "onnx-buf";
import * as esbuild from "esbuild";
import { chromium } from "playwright-core";
import { summarizeModel } from "../engine/onnx-text/summary";
import { floatTensor, graph, model as makeModel, node, valueInfo } from "../test/unit/editor/build-model";
import { layoutGraph } from "../media/graph/layout";
import { editorBody, graphPageData } from "../src/editor/graphHtml";
import { graphAnalysis } from "../src/editor/graphAnalysis";
import { modelGraph, nodesByName } from "../src/editor/graphModel";
import { summaryParts } from "../src/editor/summaryHtml";
import { page } from "../src/webview/html";

const repo = path.resolve(import.meta.dirname, "..");
const corpus = process.env.PTQ_CORPUS_DIR ?? path.join(os.homedir(), ".cache", "ptq-studio-corpus");

function defaultModels(): string[] {
  const list = JSON.parse(readFileSync(path.join(repo, "bench/corpus/models.json"), "utf8")) as { models: Array<{ package: string; path: string }> };
  return list.models.map((m) => path.join(corpus, m.package, m.path)).filter((f) => existsSync(f) && fromBinary(ModelProtoSchema, readFileSync(f)).graph!.node.length > 300);
}

async function main(): Promise<void> {
/** About n nodes of residual blocks: x → [Conv → Relu → Conv → Add(x)] → … */
function synthetic(n: number) {
  const nodes = [];
  const weights = [];
  let x = "x";
  for (let b = 0; nodes.length < n; b++) {
    nodes.push(node("Conv", [x, `w${b}a`], [`c${b}a`], {}, { name: `/block${b}/conv_a` }), node("Relu", [`c${b}a`], [`r${b}`], {}, { name: `/block${b}/relu` }),
      node("Conv", [`r${b}`, `w${b}b`], [`c${b}b`], {}, { name: `/block${b}/conv_b` }), node("Add", [`c${b}b`, x], [`y${b}`], {}, { name: `/block${b}/add` }));
    weights.push(floatTensor(`w${b}a`, [8, 8, 1, 1], new Array(64).fill(0.1)), floatTensor(`w${b}b`, [8, 8, 1, 1], new Array(64).fill(0.1)));
    x = `y${b}`;
  }
  return makeModel(graph("synthetic", nodes, [valueInfo("x", 1, [1, 8, 32, 32])], [valueInfo(x, 1, [1, 8, 32, 32])], weights));
}

const models = process.argv.slice(2).length ? process.argv.slice(2) : defaultModels();
const dir = mkdtempSync(path.join(os.tmpdir(), "ptq-graph-bench-"));
const nonce = "benchNonce";
try {
  console.error("building media/graph/main.ts…");
  await esbuild.build({ entryPoints: [path.join(repo, "media/graph/main.ts")], outfile: path.join(dir, "graph.js"), bundle: true, minify: true, format: "esm", platform: "browser", target: "es2022", logLevel: "warning" });
  // Module scripts do not load from file:// URLs: the page and the bundle are served on localhost.
  const files = new Map<string, { type: string; body: string | Buffer }>([["/graph.js", { type: "text/javascript", body: readFileSync(path.join(dir, "graph.js")) }]]);
  const server = createServer((req, res) => {
    const f = files.get(req.url ?? "");
    res.writeHead(f ? 200 : req.url === "/favicon.ico" ? 204 : 404, { "content-type": f?.type ?? "text/plain" });
    res.end(f?.body ?? "");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  console.error("starting chromium…");
  const browser = await chromium.launch({ executablePath: process.env.PTQ_CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
  console.log("| model | nodes in file | nodes drawn | edges | extract (node) | layout (node) | layout (page) | first paint (page) | zoom step | pan step | SQNR overlay |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const file of models) {
    const syn = /^synthetic:(\d+)$/.exec(file);
    const model = syn ? synthetic(Number(syn[1])) : fromBinary(ModelProtoSchema, readFileSync(file));
    const bytes = { length: syn ? 0 : readFileSync(file).length };
    let t = performance.now();
    const g = modelGraph(model);
    const extractMs = performance.now() - t;
    t = performance.now();
    layoutGraph(g.graph);
    const layoutNodeMs = performance.now() - t;
    const data = graphPageData(g, []);
    const body = editorBody(summaryParts({ fileName: path.basename(file), fileBytes: bytes.length, summary: summarizeModel(model), trusted: true }), { ...data, initialView: "graph" });
    // The webview API the page expects, stubbed: messages are collected on window.
    const stub = `<script nonce="${nonce}">window.__msgs=[];window.acquireVsCodeApi=()=>({postMessage:(m)=>window.__msgs.push(m),getState:()=>undefined,setState:()=>{}});</script>`;
    const html = page({ title: path.basename(file), cspSource: origin, nonce, scriptUri: `${origin}/graph.js`, body: stub + body, data: { ...data, initialView: "graph" } });
    files.set("/page.html", { type: "text/html", body: html });
    const tab = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors: string[] = [];
    tab.on("pageerror", (e) => errors.push(String(e)));
    tab.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await tab.goto(`${origin}/page.html`);
    const svg = tab.locator("svg#graph-svg[data-paint-ms]");
    await svg.waitFor({ timeout: 120_000 }).catch((e: unknown) => {
      throw new Error(`${path.basename(file)}: the graph did not paint (${errors.join("; ") || String(e)})`);
    });
    const layoutMs = Number(await svg.getAttribute("data-layout-ms"));
    const paintMs = Number(await svg.getAttribute("data-paint-ms"));
    // Time from an input event to the next frame, averaged over 10 events.
    const step = (kind: "zoom" | "pan") => tab.evaluate(async (k) => {
      const c = document.getElementById("graph-canvas")!;
      const times: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        if (k === "zoom") c.dispatchEvent(new WheelEvent("wheel", { deltaY: i % 2 ? 120 : -120, ctrlKey: true, clientX: 400, clientY: 300, bubbles: true, cancelable: true }));
        else {
          c.dispatchEvent(new MouseEvent("mousedown", { button: 0, clientX: 400, clientY: 300, bubbles: true }));
          window.dispatchEvent(new MouseEvent("mousemove", { buttons: 1, clientX: 400 + (i % 2 ? -40 : 40), clientY: 300, bubbles: true }));
          window.dispatchEvent(new MouseEvent("mouseup", { bubbles: true }));
        }
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        times.push(performance.now() - t0);
      }
      return times.reduce((a, b) => a + b, 0) / times.length;
    }, kind);
    const zoomMs = await step("zoom");
    const panMs = await step("pan");
    // A smoke check of the interactions: search, Enter, hover on the selected node shows its shapes.
    await tab.locator("#graph-search").fill("conv");
    await tab.locator("#graph-search").press("Enter");
    const status = await tab.locator("#graph-search-status").textContent();
    // A model whose Convs all sit in collapsed If bodies (silero_vad) has no match: then the first node is hovered.
    await tab.locator(/of \d+/.test(status ?? "") ? "g.node.selected" : "g.node").first().hover();
    const hover = (await tab.locator("#graph-hover").textContent()) ?? "";
    // The analysis overlay: every node an SQNR (spread over the bands), then the selected node's histogram.
    const names = [...nodesByName(g.graph).keys()];
    const analysis = graphAnalysis(names.map((n, i) => ({ node: n, op: "?", tensor: n, role: "input" as const, quantized: true, sqnrDb: (i * 7) % 50 })), 20, new Set(names));
    const overlay = await tab.evaluate(async (a) => {
      const t0 = performance.now();
      window.postMessage({ type: "analysis", analysis: a }, "*");
      await new Promise((r) => setTimeout(r, 0));
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return { ms: performance.now() - t0, coloured: document.querySelectorAll("svg.by-sqnr g.node[class*=sqnr-]").length, legend: document.getElementById("graph-legend")?.textContent ?? "" };
    }, analysis ?? null);
    const selectedId = await tab.evaluate(() => document.querySelector<SVGGElement>("g.node.selected")?.dataset.id);
    const selected = g.graph.nodes.find((n) => n.id === selectedId);
    const hist = !selected ? "no node selected" : await tab.evaluate(async (node) => {
      window.postMessage({ type: "histograms", node, histograms: [{ kind: "ptq.histogram", tensor: "t", edges: [0, 1, 2, 3], counts: [1, 10, 3], floatRange: [0, 3], clipRange: [0.5, 2.5] }] }, "*");
      await new Promise((r) => setTimeout(r, 0));
      return document.querySelector("#details-histograms svg.histogram path.hist-bars") ? "ok" : "not drawn";
    }, selected.name);
    if (overlay.coloured === 0 || !/SQNR/.test(overlay.legend)) errors.push(`overlay: ${overlay.coloured} nodes coloured, legend "${overlay.legend}"`);
    if (process.env.PTQ_GRAPH_SCREENSHOTS) await tab.screenshot({ path: path.join(process.env.PTQ_GRAPH_SCREENSHOTS, `${path.basename(file, ".onnx")}.png`) });
    if (errors.length) console.error(`${path.basename(file)}: page errors: ${errors.join("; ")}`);
    if (!/\w+: /.test(hover)) console.error(`${path.basename(file)}: search "${status}", hover "${hover.slice(0, 120)}"`);
    if (hist !== "ok") console.error(`${path.basename(file)}: histogram of the selected node: ${hist}`);
    const f = (x: number) => `${x.toFixed(0)} ms`;
    console.log(`| ${path.basename(file)} | ${model.graph!.node.length} | ${g.graph.nodes.length} | ${g.graph.edges.length} | ${f(extractMs)} | ${f(layoutNodeMs)} | ${f(layoutMs)} | ${f(paintMs)} | ${zoomMs.toFixed(1)} ms | ${panMs.toFixed(1)} ms | ${f(overlay.ms)} |`);
    await tab.close();
  }
  await browser.close();
  server.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
