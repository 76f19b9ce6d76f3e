// What the mixed-precision search decided, in words and as a table: the CLI prints the lines, a notebook cell whose
// value is the search's result shows the table (our renderer) and the lines (plain text).
import { MIME, type TableDisplay } from "../display-types";
import { renderTable } from "../../engine/analysis/format";
import { byInt16Gain, type MixedPrecisionResult, type SearchStep } from "../../engine/analysis/sensitivity";

/** "2 node(s) in float + 3 node(s) at 16-bit activations" / "no node changed". */
export function pickedNodes(s: SearchStep): string {
  const parts = [s.keptFloat.length && `${s.keptFloat.length} node(s) in float`, s.int16.length && `${s.int16.length} node(s) at 16-bit activations`];
  return parts.filter(Boolean).join(" + ") || "no node changed";
}

/** The unit of a search's metric, after the number. */
const metricUnit = (r: MixedPrecisionResult) => (r.target.kind === "sqnr" ? "dB output SQNR" : r.target.kind === "drop" ? "% top-1" : "% agreement");

const signed = (db: number) => `${db >= 0 ? "+" : ""}${db.toFixed(2)}`;

/** Each changed node with its remedy, the SQNR gain that remedy gives it (measured or predicted), and its rank for it. */
function changedNodes(r: MixedPrecisionResult): { node: string; op: string; remedy: "float" | "16-bit"; gainDb: number; rank: number }[] {
  const byFloat = r.ranking.layers;
  const by16 = byInt16Gain(byFloat);
  const at = (list: typeof byFloat, n: string) => list.findIndex((l) => l.node === n);
  return [
    ...r.chosen.keptFloat.map((n) => ({ node: n, op: byFloat[at(byFloat, n)]!.opType, remedy: "float" as const, gainDb: byFloat[at(byFloat, n)]!.gainDb, rank: at(byFloat, n) + 1 })),
    ...r.chosen.int16.map((n) => ({ node: n, op: by16[at(by16, n)]!.opType, remedy: "16-bit" as const, gainDb: by16[at(by16, n)]!.int16GainDb ?? NaN, rank: at(by16, n) + 1 })),
  ];
}

/** The search in lines: target and whether it was met, the choice, each changed node and why, every step. */
export function searchLines(r: MixedPrecisionResult): string[] {
  const { chosen, target } = r;
  const unit = metricUnit(r);
  const goal =
    target.kind === "sqnr"
      ? `≥ ${target.minDb} dB output SQNR`
      : target.kind === "drop"
        ? `top-1 drop ≤ ${target.maxPp} pp (float ${r.floatMetric!.toFixed(2)} %)`
        : `argmax agreement with float ≥ ${target.minPct} % per ${target.per ?? "sample"}`;
  const lines = [`target ${goal} ${chosen.met ? "met" : `NOT met even with ${pickedNodes(chosen)}`}`];
  lines.push(`  all nodes quantized: ${r.steps[0]!.metric.toFixed(2)} ${unit}`);
  // The ranking may run on fewer samples than the steps, and only below each node (SearchOptions.rankSamples, runDownstream).
  const on = r.rankedOn;
  if (on) {
    const cut = on.cachedTensors ? `, each run only below its node (${on.cachedTensors} float tensors cached, ${(on.cachedBytes / 2 ** 20).toFixed(0)} MiB)` : "";
    lines.push(`  ranked on ${on.samples} of ${on.of} samples${cut}; the steps measure on all`);
  }
  lines.push(`  chosen: ${pickedNodes(chosen)} → ${chosen.metric.toFixed(2)} ${unit}; ${(100 * chosen.int8WeightShare).toFixed(1)} % of weights int8`);
  // Only news when float nodes had to go that far.
  if (r.overBudget.length && (chosen.keptFloat.length || !chosen.met) && chosen.remedy !== "int16") {
    lines.push(`  passed over for the int8 weight budget (too many weights to keep in float): ${r.overBudget.join(", ")}`);
  }
  const total = r.ranking.layers.length;
  const predicted = r.ranking.method === "quantize-one";
  for (const c of changedNodes(r)) {
    const how = c.remedy === "float" ? "in float" : "at 16 bits";
    const what = predicted ? `${how} it should gain ${signed(c.gainDb)} dB SQNR by its error quantized alone` : `alone ${how} it moves output SQNR by ${signed(c.gainDb)} dB`;
    lines.push(`  ${c.remedy === "float" ? "float" : "int16"}: ${c.node}: ${what} (rank ${c.rank} of ${total})`);
  }
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  lines.push("  search steps (nodes changed → metric):");
  for (const s of r.steps) lines.push(`    ${pickedNodes(s)} → ${s.metric.toFixed(2)} ${unit}${s.met ? " (meets the target)" : ""}`);
  return lines;
}

/** The changed nodes as a table (our renderer sorts it): node, op, remedy, gain alone, rank. */
export function searchTable(r: MixedPrecisionResult): TableDisplay {
  const { chosen } = r;
  const metric =
    r.target.kind === "sqnr"
      ? `${chosen.metric.toFixed(2)} dB output SQNR`
      : r.target.kind === "drop"
        ? `top-1 ${chosen.metric.toFixed(2)} % (float ${r.floatMetric!.toFixed(2)} %)`
        : `${chosen.metric.toFixed(2)} % argmax agreement with float`;
  return {
    title: `Mixed precision: target ${chosen.met ? "met" : "NOT met"} — ${metric}, ${(100 * chosen.int8WeightShare).toFixed(1)} % of weights int8; ${pickedNodes(chosen)}`,
    columns: ["node", "op", "remedy", r.ranking.method === "quantize-one" ? "predicted SQNR gain (dB)" : "output SQNR gain alone (dB)", "rank"],
    rows: changedNodes(r).map((c) => [c.node, c.op, c.remedy, Number(c.gainDb.toFixed(2)), c.rank]),
  };
}

/** The rich display a notebook shows for a search result. */
export function searchMimeBundle(r: MixedPrecisionResult): Record<string, unknown> {
  return { [MIME.table]: searchTable(r), "text/plain": searchLines(r).join("\n") };
}

const kib = (bytes: number) => Number((bytes / 1024).toFixed(1));

/** Every configuration the search measured (float first): accuracy, int8 weight share, size and latency. */
export function tradeoffTable(r: MixedPrecisionResult): TableDisplay {
  const unit = r.target.kind === "sqnr" ? "output SQNR (dB)" : r.target.kind === "drop" ? "top-1 (%)" : "agreement (%)";
  const timed = r.float.latencyMs !== undefined;
  const isChosen = (s: SearchStep) => s.keptFloat.join() === r.chosen.keptFloat.join() && s.int16.join() === r.chosen.int16.join();
  const rows: TableDisplay["rows"] = [["float model", 0, 0, r.floatMetric === undefined ? null : Number(r.floatMetric.toFixed(2)), "", 0, kib(r.float.bytes), ...(timed ? [Number(r.float.latencyMs!.toFixed(3))] : [])]];
  for (const s of r.steps) {
    rows.push([
      isChosen(s) ? "chosen" : s.keptFloat.length + s.int16.length === 0 ? "default INT8" : "",
      s.keptFloat.length,
      s.int16.length,
      Number.isFinite(s.metric) ? Number(s.metric.toFixed(2)) : null,
      s.met ? "yes" : "no",
      Number((100 * s.int8WeightShare).toFixed(1)),
      kib(s.bytes),
      ...(timed ? [s.latencyMs === undefined ? null : Number(s.latencyMs.toFixed(3))] : []),
    ]);
  }
  return {
    title: `Mixed precision trade-off: every configuration the search measured${timed ? " (p50 latency, one interleaved benchmark)" : ""}`,
    columns: ["", "float nodes", "16-bit nodes", unit, "meets target", "weights int8 (%)", "size (KiB)", ...(timed ? ["p50 (ms)"] : [])],
    rows,
  };
}

export function tradeoffMimeBundle(r: MixedPrecisionResult): Record<string, unknown> {
  const t = tradeoffTable(r);
  const text = renderTable(t.columns, t.rows.map((row) => row.map((c) => (c === null ? "—" : String(c)))));
  return { [MIME.table]: t, "text/plain": `${t.title}\n${text}` };
}

/** Metric against size (KiB) per configuration; latency in the hover text when measured. */
export function tradeoffPlot(r: MixedPrecisionResult): { data: unknown[]; layout: unknown } {
  const t = tradeoffTable(r);
  const col = (name: string) => t.columns.indexOf(name);
  const [metric, size, p50] = [3, col("size (KiB)"), col("p50 (ms)")];
  const pts = t.rows.slice(1).filter((row) => row[metric] !== null);
  const label = (row: TableDisplay["rows"][number]) => `${row[1]} float + ${row[2]} 16-bit${p50 >= 0 ? `, ${row[p50]} ms` : ""}${row[0] ? ` (${row[0]})` : ""}`;
  return {
    data: [
      { type: "scatter", mode: "markers", name: "configurations", x: pts.map((row) => row[size]), y: pts.map((row) => row[metric]), text: pts.map(label), marker: { color: pts.map((row) => (row[0] === "chosen" ? "#d62728" : row[4] === "yes" ? "#2ca02c" : "#1f77b4")), size: 10 } },
      ...(r.floatMetric !== undefined ? [{ type: "scatter", mode: "markers", name: "float", x: [t.rows[0]![size]], y: [r.floatMetric], marker: { symbol: "diamond", size: 12 } }] : []),
    ],
    layout: { title: { text: "Mixed precision: accuracy vs size" }, xaxis: { title: { text: "size (KiB)" } }, yaxis: { title: { text: t.columns[3] } } },
  };
}
