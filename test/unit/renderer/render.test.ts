import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { MIME, type AccuracyDisplay, type BenchmarkDisplay, type HistogramDisplay, type SqnrDisplay } from "../../../kernel/display-types";
import { tableBundle } from "../../../kernel/display";
import { accuracyTable, benchmarkTable, escapeHtml, genericTable, histogramFigure, sortRows, sqnrFigure, tableHtml } from "../../../media/renderer/render";

const theme = { foreground: "#ccc", accent: "#00f", warn: "#f80", muted: "#999" };

const bench: BenchmarkDisplay = {
  kind: "ptq.benchmark",
  models: [
    { name: "fp32", fileBytes: 4_000_000, batches: [{ batch: 1, latencyMs: { p50: 2, p90: 2.5, p99: 3 }, throughput: 500 }] },
    {
      name: "int8<script>", fileBytes: 1_000_000, sizeRatio: 0.25,
      batches: [{ batch: 1, latencyMs: { p50: 1, p90: 1.2, p99: 1.5 }, throughput: 1000, vsFirst: { speedup: 2, verdict: { trustworthy: true, reason: "" } } }],
    },
    {
      name: "int4", fileBytes: 600_000,
      batches: [{ batch: 1, latencyMs: { p50: 2.2, p90: 4, p99: 9 }, throughput: 450, vsFirst: { speedup: 0.9, verdict: { trustworthy: false, reason: "spread 80% > 50%" } } }],
    },
  ],
  notes: ["load average 1.9 <b>"],
};

test("benchmark table: speed-up highlighted good, noisy ratios marked with their reason, baseline plain", () => {
  const t = benchmarkTable(bench);
  assert.equal(t.headers.at(-1), "speed-up");
  const speed = t.rows.map((r) => r.at(-1)!);
  assert.deepEqual(speed.map((c) => [c.text, c.cls]), [["baseline", "base"], ["2.00×", "good"], ["0.90× (noisy)", "noisy"]]);
  assert.equal(speed[2]!.title, "spread 80% > 50%");
  assert.equal(t.rows[1]![2]!.text, "976.6 KB (0.25×)");
  assert.equal(t.rows[0]![3]!.text, "2.00 ms");
});

test("sortRows sorts numerically by a column, both ways, stably", () => {
  const rows = benchmarkTable(bench).rows;
  assert.deepEqual(sortRows(rows, 3, false).map((r) => r[0]!.text), ["int8<script>", "fp32", "int4"]);
  assert.deepEqual(sortRows(rows, 3, true).map((r) => r[0]!.text), ["int4", "fp32", "int8<script>"]);
  assert.deepEqual(sortRows(rows, 0, false).map((r) => r[0]!.text), ["fp32", "int4", "int8<script>"]);
});

test("tableHtml escapes model names and notes and marks headers sortable", () => {
  const html = tableHtml(benchmarkTable(bench));
  assert.ok(!html.includes("<script>"), html);
  assert.ok(html.includes("int8&lt;script&gt;"));
  assert.ok(html.includes("load average 1.9 &lt;b&gt;"));
  assert.equal((html.match(/<th data-col=/g) ?? []).length, 8);
  assert.ok(html.includes('<td class="ptq-good">2.00×</td>'));
  assert.equal(escapeHtml(`"><img onerror=alert(1)>`), "&quot;&gt;&lt;img onerror=alert(1)&gt;");
});

test("accuracy table: drop against the baseline in points, beyond the threshold highlighted bad", () => {
  const d: AccuracyDisplay = {
    kind: "ptq.accuracy", metrics: ["top-1", "agreement"],
    rows: [{ model: "fp32", values: [0.9, 1], samples: 1000 }, { model: "int8", values: [0.895, 0.99] }, { model: "int4", values: [0.85, 0.93] }],
  };
  const t = accuracyTable(d);
  assert.deepEqual(t.headers, ["model", "top-1", "Δ top-1", "agreement", "Δ agreement", "samples"]);
  assert.equal(t.rows[0]![2]!.text, "baseline");
  assert.deepEqual([t.rows[1]![1]!.text, t.rows[1]![2]!.text, t.rows[1]![2]!.cls], ["89.50 %", "−0.50 pt", undefined]);
  assert.deepEqual([t.rows[2]![2]!.text, t.rows[2]![2]!.cls], ["−5.00 pt", "bad"]);
  assert.equal(t.rows[0]![5]!.text, "1000");
});

test("histogram figure: bars at bin centres, float range dotted and clipping range dashed, log scale option", () => {
  const d: HistogramDisplay = { kind: "ptq.histogram", tensor: "relu_out", edges: [0, 1, 2, 4], counts: [10, 5, 1], floatRange: [0, 4], clipRange: [0, 2.5], method: "entropy" };
  const f = histogramFigure(d, theme);
  const bar = f.data[0] as { x: number[]; y: number[]; width: number[] };
  assert.deepEqual(bar.x, [0.5, 1.5, 3]);
  assert.deepEqual(bar.width, [1, 1, 2]);
  const shapes = f.layout!.shapes as Array<{ x0: number; line: { dash: string; color: string } }>;
  assert.deepEqual(shapes.map((s) => [s.x0, s.line.dash]), [[0, "dot"], [4, "dot"], [0, "dash"], [2.5, "dash"]]);
  assert.equal((f.layout!.yaxis as { type: string }).type, "linear");
  assert.equal((histogramFigure(d, theme, true).layout!.yaxis as { type: string }).type, "log");
  assert.equal(f.layout!.paper_bgcolor, "rgba(0,0,0,0)");
  assert.deepEqual(f.layout!.font, { color: "#ccc" });
});

test("SQNR figure: layers below the warning level coloured as warnings", () => {
  const d: SqnrDisplay = { kind: "ptq.sqnr", layers: [{ name: "conv1", sqnrDb: 35 }, { name: "fc", sqnrDb: 12, op: "Gemm" }] };
  const bar = sqnrFigure(d, theme).data[0] as { marker: { color: string[] }; x: string[] };
  assert.deepEqual(bar.x, ["conv1", "fc"]);
  assert.deepEqual(bar.marker.color, ["#00f", "#f80"]);
});

test("display.table's own MIME type renders as a sortable table: numbers sort as numbers, names escaped", () => {
  const bundle = tableBundle([{ layer: "conv<b>", sqnr: 31.123456, params: 10 }, { layer: "fc", sqnr: 9.5 }, { layer: "attn", sqnr: 120, params: 2 }], "SQNR");
  const t = genericTable(bundle[MIME.table] as never);
  assert.equal(t.caption, "SQNR");
  assert.deepEqual(t.headers, ["layer", "sqnr", "params"]);
  assert.deepEqual(t.rows.map((r) => r.map((c) => c.text)), [["conv<b>", "31.1235", "10"], ["fc", "9.5", ""], ["attn", "120", "2"]]);
  // 9.5 < 31.1 < 120 numerically (as text "120" would sort first).
  assert.deepEqual(sortRows(t.rows, 1, false).map((r) => r[0]!.text), ["fc", "conv<b>", "attn"]);
  assert.match(tableHtml(t), /conv&lt;b&gt;/);
  assert.doesNotMatch(tableHtml(t), /conv<b>/);
});

test("every MIME type the kernel emits for the renderer is declared in the manifest's renderer", () => {
  const pkg = JSON.parse(readFileSync(path.join(__dirname, "../../../package.json"), "utf8"));
  const declared: string[] = pkg.contributes.notebookRenderer.flatMap((r: { mimeTypes: string[] }) => r.mimeTypes);
  for (const mime of Object.values(MIME)) assert.ok(declared.includes(mime), `${mime} is declared`);
});
