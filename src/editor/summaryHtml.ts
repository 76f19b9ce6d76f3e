// The ONNX editor's page body: the model summary and its action buttons. Every model-derived string (names, doc
// strings, metadata, producer) goes through escapeHtml; test/unit/editor/summary-html.test.ts feeds it hostile names.
import type { ModelSummary } from "../../engine/onnx-text/summary";
import { formatBytes } from "../../media/renderer/render";
import { escapeHtml as h } from "../webview/html";

export interface SummaryView {
  fileName: string;
  fileBytes: number;
  summary: ModelSummary;
  /** In an untrusted workspace the run buttons are replaced by the reason and a "Trust" button. */
  trusted: boolean;
}

const num = (n: number) => n.toLocaleString("en-US");

/**
 * A name or type that may be long and has no spaces (`float[p2o.DynamicDimension.0,3,p2o.DynamicDimension.1,…]`):
 * escaped, with break opportunities after its separators and the whole text as a tooltip.
 */
function longCode(s: string): string {
  return `<code title="${h(s)}">${h(s).replace(/([,./_:[])/g, "$1<wbr>")}</code>`;
}

function valueTable(rows: ModelSummary["inputs"]): string {
  if (rows.length === 0) return `<p class="muted">none</p>`;
  return `<table class="values"><tr><th>name</th><th>type</th></tr>${rows.map((v) => `<tr><td>${longCode(v.name)}</td><td>${longCode(v.type)}</td></tr>`).join("")}</table>`;
}

// The grid's columns are at least 320px: without these a long unbroken name or type widened its table past its
// column and drew over the next section. Sections may shrink (min-width 0); text wraps after a separator, or at any
// point if it must; names keep a third of the width so a long type does not squeeze them to a letter per line.
const EDITOR_CSS = `<style>
.grid > section { min-width: 0; }
.grid td, h1, p { overflow-wrap: anywhere; }
.grid th { white-space: nowrap; }
table.values { width: 100%; }
table.values tr > :first-child { width: 33%; }
</style>`;

export function summaryBody(v: SummaryView): string {
  const p = summaryParts(v);
  return `${p.header}\n${p.sections}`;
}

/**
 * The summary in two parts: the header (title, one line of facts, the action buttons), which the editor shows
 * above its Summary | Graph tabs, and the sections (inputs, outputs, sizes, op counts, metadata) of the Summary tab.
 */
export function summaryParts(v: SummaryView): { header: string; sections: string } {
  const s = v.summary;
  const actions = v.trusted
    ? `<button data-command="ptq.quantizeModel">Quantize model…</button>
<button data-command="ptq.benchmarkModel">Benchmark this model</button>
<button class="secondary" data-command="ptq.openModelInNotebook">Open in notebook</button>`
    : `<p class="warn">This workspace is not trusted, so PTQ Studio will not run models or start a kernel here (a model run
executes native code on your machine).</p><button data-command="workbench.trust.manage">Manage workspace trust…</button>`;
  const opsets = s.opsets.map((o) => `<code>${h(o.domain)}</code> ${o.version}`).join(", ");
  const sizes = s.sizeByType
    .map((t) => `<tr><td>${longCode(t.type)}</td><td class="num">${num(t.tensors)}</td><td class="num">${num(t.params)}</td><td class="num">${formatBytes(t.bytes)}</td></tr>`)
    .join("");
  const ops = s.opCounts.map((o) => `<tr><td>${longCode(o.op)}</td><td class="num">${o.count}</td></tr>`).join("");
  const meta = s.metadata.map((m) => `<tr><td>${h(m.key)}</td><td>${h(m.value)}</td></tr>`).join("");
  const header = `${EDITOR_CSS}<h1>${h(v.fileName)}</h1>
<p class="muted">${formatBytes(v.fileBytes)} on disk · IR ${s.irVersion} · opsets ${opsets}${s.producer ? ` · produced by ${h(s.producer)}` : ""}
 · graph <code>${h(s.graphName)}</code> · ${num(s.nodeCount)} nodes${s.subgraphCount ? ` (${s.subgraphCount} subgraphs)` : ""} · ${num(s.totalParams)} parameters (${formatBytes(s.totalBytes)})</p>
${s.docString ? `<p>${h(s.docString)}</p>` : ""}
<div id="actions">${actions}<button class="secondary" data-command="ptq.openAsOnnxText">Open as ONNX text</button></div>`;
  const sections = `<div class="grid">
<section><h2>Inputs</h2>${valueTable(s.inputs)}</section>
<section><h2>Outputs</h2>${valueTable(s.outputs)}</section>
<section><h2>Size by element type</h2><table><tr><th>type</th><th>tensors</th><th>parameters</th><th>bytes</th></tr>${sizes}</table></section>
<section><h2>Op counts</h2><table><tr><th>op</th><th>count</th></tr>${ops}</table></section>
${meta ? `<section><h2>Metadata</h2><table class="values">${meta}</table></section>` : ""}
</div>`;
  return { header, sections };
}
