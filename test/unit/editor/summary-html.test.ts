import { test } from "node:test";
import assert from "node:assert/strict";
import { summarizeModel } from "../../../engine/onnx-text/summary";
import { summaryBody } from "../../../src/editor/summaryHtml";
import { jsonForScript, makeNonce, page } from "../../../src/webview/html";
import { floatTensor, graph, mlp, model, node, valueInfo } from "./build-model";

const EVIL = ['<script>alert(1)</script>', '"><img src=x onerror=alert(2)>', "' onmouseover='alert(3)"];

function hostile() {
  const w = floatTensor(EVIL[1]!, [2, 2], [1, 2, 3, 4]);
  return model(
    graph(EVIL[0]!, [node("MatMul", [EVIL[0]!, EVIL[1]!], [EVIL[2]!], {}, { name: EVIL[1], domain: "<b>evil" })],
      [valueInfo(EVIL[0]!, 1, ["<N>", 2])], [valueInfo(EVIL[2]!, 1, [2, 2])], [w]),
    13, { producer: EVIL[0], doc: EVIL[1], metadata: { [EVIL[0]!]: EVIL[1]! } },
  );
}

test("summary: inputs without initializers, opsets, op counts with subgraphs, bytes by dtype", () => {
  const s = summarizeModel(mlp());
  assert.deepEqual(s.inputs, [{ name: "input", type: "float[N,4]" }]);
  assert.deepEqual(s.outputs, [{ name: "out_t", type: "float[2,N]" }]);
  assert.deepEqual(s.opsets, [{ domain: "ai.onnx", version: 13 }]);
  assert.equal(s.nodeCount, 6);
  assert.deepEqual(s.opCounts[0], { op: "MatMul", count: 2 });
  assert.deepEqual(s.sizeByType, [
    { type: "float", tensors: 3, params: 448, bytes: 1792 },
    { type: "int64", tensors: 1, params: 2, bytes: 16 },
  ]);
  const body = graph("b", [node("Relu", ["x"], ["y"])], [], [valueInfo("y", 1, [1])]);
  const withIf = summarizeModel(model(graph("g", [node("If", ["c"], ["y"], { then_branch: body, else_branch: body })], [], [])));
  assert.equal(withIf.nodeCount, 3);
  assert.equal(withIf.subgraphCount, 2);
});

test("every model-derived string is escaped in the editor page", () => {
  const html = summaryBody({ fileName: "<script>x.onnx", fileBytes: 1234, summary: summarizeModel(hostile()), trusted: true });
  assert.ok(!/<script/i.test(html), "no raw <script");
  assert.ok(!/<img/i.test(html), "no raw <img");
  assert.ok(!/<b>evil/.test(html), "no raw domain markup");
  assert.ok(!html.includes(`onmouseover='`), "no raw quote-breaking attribute");
  assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
  assert.ok(html.includes("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
  assert.ok(html.includes("float[&lt;N&gt;,2]"));
  assert.ok(html.includes('data-command="ptq.quantizeModel"'));
});

test("untrusted: no run buttons, the reason and a way to trust", () => {
  const html = summaryBody({ fileName: "m.onnx", fileBytes: 1, summary: summarizeModel(mlp()), trusted: false });
  assert.ok(!html.includes("ptq.quantizeModel") && !html.includes("ptq.benchmarkModel"));
  assert.match(html, /not trusted/);
  assert.ok(html.includes('data-command="workbench.trust.manage"'));
  assert.ok(html.includes('data-command="ptq.openAsOnnxText"'), "reading the model is safe untrusted");
});

test("page: CSP with nonce, no inline script without it, embedded JSON cannot close its script element", () => {
  const nonce = makeNonce();
  assert.match(nonce, /^[A-Za-z0-9]{32}$/);
  const html = page({ title: EVIL[0]!, cspSource: "vscode-webview://x", nonce, scriptUri: "vscode-webview://x/webview.js", body: "<p>ok</p>", data: { name: "</script><script>alert(1)</script>" } });
  assert.match(html, new RegExp(`script-src 'nonce-${nonce}' vscode-webview://x`));
  assert.match(html, /default-src 'none'/);
  const scripts = html.match(/<script[^>]*>/g) ?? [];
  assert.equal(scripts.length, 2);
  assert.ok(scripts.every((s) => s.includes(`nonce="${nonce}"`) || s.includes('type="application/json"')));
  assert.equal((html.match(/<\/script>/g) ?? []).length, 2, "the data cannot add a closing tag");
  assert.deepEqual(JSON.parse(jsonForScript({ a: "</script>" })), { a: "</script>" });
  assert.ok(html.includes("<title>&lt;script&gt;"));
});

test("long symbolic dims (paddle2onnx's p2o.DynamicDimension.N) wrap inside their column, with the full type as a tooltip", () => {
  const dims = ["p2o.DynamicDimension.0", 3, "p2o.DynamicDimension.1", "p2o.DynamicDimension.2"];
  const m = model(graph("g", [node("Relu", ["x"], ["y"])], [valueInfo("x", 1, dims)], [valueInfo("y", 1, dims)]));
  const html = summaryBody({ fileName: "det.onnx", fileBytes: 1, summary: summarizeModel(m), trusted: true });
  const type = "float[p2o.DynamicDimension.0,3,p2o.DynamicDimension.1,p2o.DynamicDimension.2]";
  const cells = html.match(/<code title="float\[p2o[^"]*">[^]*?<\/code>/g) ?? [];
  assert.equal(cells.length, 2, "the input's and the output's type");
  for (const c of cells) {
    assert.ok(c.startsWith(`<code title="${type}">`), c);
    assert.equal(c.replace(/<[^>]+>/g, ""), type, "the text is the type, whole");
    assert.ok((c.match(/<wbr>/g) ?? []).length >= 6, `break opportunities after separators: ${c}`);
  }
  // A grid item's min-width is its content's by default: without min-width 0 a section grows over its neighbour.
  assert.match(html, /\.grid > section \{ min-width: 0; \}/);
  assert.match(html, /\.grid td, [^{]*\{ overflow-wrap: anywhere; \}/);
  assert.match(html, /<table class="values">/);
});
