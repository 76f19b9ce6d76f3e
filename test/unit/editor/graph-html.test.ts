import { test } from "node:test";
import assert from "node:assert/strict";
import { summarizeModel } from "../../../engine/onnx-text/summary";
import type { GraphPageData } from "../../../media/graph/types";
import { editorBody, GRAPH_DEFAULT_MAX_NODES, GRAPH_MAX_NODES, graphPageData } from "../../../src/editor/graphHtml";
import { modelGraph } from "../../../src/editor/graphModel";
import { summaryParts } from "../../../src/editor/summaryHtml";
import { page } from "../../../src/webview/html";
import { floatTensor, graph, model, node, valueInfo } from "./build-model";

const LONG = `n${"<".repeat(5_000)}${"x".repeat(5_000)}`;
const HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>', "</svg><script>alert(3)</script>", "evil\u202Egnp.exe", "' onmouseover='alert(4)", "</script><script>alert(5)</script>", LONG];

function hostileModel() {
  const nodes = HOSTILE.map((name, i) => node(i === 2 ? "</svg>" : "Relu", [i === 0 ? HOSTILE[0]! : `t${i - 1}`], [`t${i}`], { mode: HOSTILE[i]! }, { name, domain: i === 1 ? "<b>evil" : "" }));
  nodes[3]!.docString = "</script><img src=x onerror=alert(6)>";
  return model(
    graph(HOSTILE[2]!, nodes, [valueInfo(HOSTILE[0]!, 1, ["<N>", 2])], [valueInfo(`t${HOSTILE.length - 1}`, 1, ['"/><svg onload=alert(7)>'])], [floatTensor(HOSTILE[1]!, [1], [1])]),
    13, { producer: HOSTILE[0], doc: HOSTILE[5] },
  );
}

function editorPage(data: GraphPageData, summary: { header: string; sections: string }) {
  return page({ title: HOSTILE[0]!, cspSource: "vscode-resource:", nonce: "NONCE123", scriptUri: "vscode-resource:/out/media/graph.js", body: editorBody(summary, data), data });
}

test("hostile names, types, attributes and doc strings never become markup in the editor page", () => {
  const m = hostileModel();
  const data = graphPageData(modelGraph(m), [HOSTILE[0]!, HOSTILE[2]!], [HOSTILE[5]!, HOSTILE[6]!]);
  const html = editorPage(data, summaryParts({ fileName: HOSTILE[1]!, fileBytes: 10, summary: summarizeModel(m), trusted: true }));
  // Exactly our two scripts: the JSON data element and the nonce'd module; nothing else can run.
  assert.deepEqual(html.match(/<script[^>]*>/gi), ['<script type="application/json" id="ptq-data">', '<script type="module" nonce="NONCE123" src="vscode-resource:/out/media/graph.js">']);
  assert.equal((html.match(/<\/script>/gi) ?? []).length, 2);
  assert.ok(!/<\/svg>/i.test(html), "no raw </svg>");
  assert.ok(!/<svg/i.test(html), "no raw <svg: the page script draws the SVG from data");
  assert.ok(!/<img/i.test(html) && !/<b>evil/.test(html), "no raw markup from the model");
  // Every real tag's attributes (model text is escaped, so each "<" starts one of ours): none is an event handler.
  const attrs = [...html.matchAll(/<[a-zA-Z][\w-]*((?:\s+[\w:-]+(?:="[^"]*")?)*)\s*\/?>/g)].flatMap((t) => [...t[1]!.matchAll(/([\w:-]+)(?:="[^"]*")?/g)].map((a) => a[1]!));
  assert.ok(attrs.length > 50);
  assert.deepEqual(attrs.filter((a) => /^on/i.test(a)), [], "no event handler attribute");
  assert.equal((html.match(/</g) ?? []).length, (html.match(/<\/?[a-zA-Z!][^<>]*>/g) ?? []).length, "every < opens a well-formed tag");
  assert.match(html, /Content-Security-Policy" content="default-src 'none';[^"]*script-src 'nonce-NONCE123' vscode-resource:/);
  // The data round-trips exactly: the page script gets every name as it is in the model (then sets it as text).
  const json = html.match(/<script type="application\/json" id="ptq-data">([\s\S]*?)<\/script>/)![1]!;
  const back = JSON.parse(json) as GraphPageData;
  assert.deepEqual(back, data);
  const names = back.graph.nodes.filter((n) => n.kind === "node").map((n) => n.name);
  assert.deepEqual(names, HOSTILE);
  assert.equal(back.graph.nodes.find((n) => n.name === HOSTILE[3])!.doc, "</script><img src=x onerror=alert(6)>");
  assert.deepEqual(back.excluded, [HOSTILE[0], HOSTILE[2]]);
  assert.deepEqual(back.sixteenBit, [HOSTILE[5], HOSTILE[6]]);
});

test("the graph frame holds no model string: only the summary (escaped) and the JSON data carry them", () => {
  const data = graphPageData(modelGraph(hostileModel()), []);
  const frame = editorBody({ header: "", sections: "" }, data);
  for (const s of [...HOSTILE, "evil", "alert"]) assert.ok(!frame.includes(s), `frame has no ${s.slice(0, 20)}`);
  assert.match(frame, /Laying out 9 nodes/);
});

test("the graph is the first view up to the measured node limit, the summary beyond it", () => {
  const chain = (n: number) => model(graph("c", Array.from({ length: n }, (_, i) => node("Relu", [`t${i}`], [`t${i + 1}`])), [valueInfo("t0", 1, [1])], [valueInfo(`t${n}`, 1, [1])]));
  const small = graphPageData(modelGraph(chain(GRAPH_DEFAULT_MAX_NODES - 2)), []);
  const big = graphPageData(modelGraph(chain(GRAPH_DEFAULT_MAX_NODES - 1)), []);
  assert.equal(small.graph.nodes.length, GRAPH_DEFAULT_MAX_NODES);
  assert.equal(small.initialView, "graph");
  assert.equal(big.initialView, "summary");
  const body = editorBody({ header: "<h1>m</h1>", sections: "<p>summary</p>" }, big);
  assert.match(body, /<section id="view-graph"[^>]* hidden>/);
  assert.match(body, /id="tab-summary" role="tab" data-view="summary" aria-selected="true"/);
  assert.match(editorBody({ header: "", sections: "" }, small), /<section id="view-summary"[^>]* hidden>/);
  assert.match(body, /<header id="page-header"><h1>m<\/h1><\/header>[\s\S]*id="view-tabs"[\s\S]*<p>summary<\/p>/, "the header is above the tabs, the sections in the Summary tab");
});

test("past the drawing limit the graph is left out of the page and the count says why", () => {
  const chain = (n: number) => model(graph("c", Array.from({ length: n }, (_, i) => node("Relu", [`t${i}`], [`t${i + 1}`])), [valueInfo("t0", 1, [1])], [valueInfo(`t${n}`, 1, [1])]));
  const atLimit = graphPageData(modelGraph(chain(GRAPH_MAX_NODES - 2)), []);
  assert.equal(atLimit.graph.nodes.length, GRAPH_MAX_NODES);
  assert.equal(atLimit.omittedNodes, undefined);
  const over = graphPageData(modelGraph(chain(GRAPH_MAX_NODES - 1)), []);
  assert.deepEqual(over.graph, { name: "c", nodes: [], edges: [] });
  assert.equal(over.omittedNodes, GRAPH_MAX_NODES + 1);
  assert.equal(over.initialView, "summary");
});
