// What the mixed-precision search decided, in words and as a table: the CLI prints the lines, a notebook cell whose
// value is the search's result shows the table (our renderer) and the lines (plain text).
import { MIME, type TableDisplay } from "../display-types";
import type { MixedPrecisionResult, SearchStep } from "./sensitivity";

/** "2 node(s) in float + 3 node(s) at 16-bit activations" / "no node changed". */
export function pickedNodes(s: SearchStep): string {
  const parts = [s.keptFloat.length && `${s.keptFloat.length} node(s) in float`, s.int16.length && `${s.int16.length} node(s) at 16-bit activations`];
  return parts.filter(Boolean).join(" + ") || "no node changed";
}

const signed = (db: number) => `${db >= 0 ? "+" : ""}${db.toFixed(2)}`;

/** Each changed node with its remedy, the output-SQNR gain that remedy gave it alone, and its rank for it. */
function changedNodes(r: MixedPrecisionResult): { node: string; op: string; remedy: "float" | "16-bit"; gainDb: number; rank: number }[] {
  const byFloat = r.ranking.layers;
  const by16 = [...byFloat].sort((a, b) => (b.int16GainDb ?? 0) - (a.int16GainDb ?? 0));
  const at = (list: typeof byFloat, n: string) => list.findIndex((l) => l.node === n);
  return [
    ...r.chosen.keptFloat.map((n) => ({ node: n, op: byFloat[at(byFloat, n)]!.opType, remedy: "float" as const, gainDb: byFloat[at(byFloat, n)]!.gainDb, rank: at(byFloat, n) + 1 })),
    ...r.chosen.int16.map((n) => ({ node: n, op: by16[at(by16, n)]!.opType, remedy: "16-bit" as const, gainDb: by16[at(by16, n)]!.int16GainDb ?? NaN, rank: at(by16, n) + 1 })),
  ];
}

/** The search in lines: target and whether it was met, the choice, each changed node and why, every step. */
export function searchLines(r: MixedPrecisionResult): string[] {
  const { chosen, target } = r;
  const unit = target.kind === "sqnr" ? "dB output SQNR" : "% top-1";
  const goal = target.kind === "sqnr" ? `≥ ${target.minDb} dB output SQNR` : `top-1 drop ≤ ${target.maxPp} pp (float ${r.floatMetric!.toFixed(2)} %)`;
  const lines = [`target ${goal} ${chosen.met ? "met" : `NOT met even with ${pickedNodes(chosen)}`}`];
  lines.push(`  all nodes quantized: ${r.steps[0]!.metric.toFixed(2)} ${unit}`);
  lines.push(`  chosen: ${pickedNodes(chosen)} → ${chosen.metric.toFixed(2)} ${unit}; ${(100 * chosen.int8WeightShare).toFixed(1)} % of weights int8`);
  // Only news when float nodes had to go that far.
  if (r.overBudget.length && (chosen.keptFloat.length || !chosen.met) && chosen.remedy !== "int16") {
    lines.push(`  passed over for the int8 weight budget (too many weights to keep in float): ${r.overBudget.join(", ")}`);
  }
  const total = r.ranking.layers.length;
  for (const c of changedNodes(r)) {
    const how = c.remedy === "float" ? "in float" : "at 16 bits";
    lines.push(`  ${c.remedy === "float" ? "float" : "int16"}: ${c.node}: alone ${how} it moves output SQNR by ${signed(c.gainDb)} dB (rank ${c.rank} of ${total})`);
  }
  lines.push("  search steps (nodes changed → metric):");
  for (const s of r.steps) lines.push(`    ${pickedNodes(s)} → ${s.metric.toFixed(2)} ${unit}${s.met ? " (meets the target)" : ""}`);
  return lines;
}

/** The changed nodes as a table (our renderer sorts it): node, op, remedy, gain alone, rank. */
export function searchTable(r: MixedPrecisionResult): TableDisplay {
  const { chosen } = r;
  const metric = r.target.kind === "sqnr" ? `${chosen.metric.toFixed(2)} dB output SQNR` : `top-1 ${chosen.metric.toFixed(2)} % (float ${r.floatMetric!.toFixed(2)} %)`;
  return {
    title: `Mixed precision: target ${chosen.met ? "met" : "NOT met"} — ${metric}, ${(100 * chosen.int8WeightShare).toFixed(1)} % of weights int8; ${pickedNodes(chosen)}`,
    columns: ["node", "op", "remedy", "output SQNR gain alone (dB)", "rank"],
    rows: changedNodes(r).map((c) => [c.node, c.op, c.remedy, Number(c.gainDb.toFixed(2)), c.rank]),
  };
}

/** The rich display a notebook shows for a search result. */
export function searchMimeBundle(r: MixedPrecisionResult): Record<string, unknown> {
  return { [MIME.table]: searchTable(r), "text/plain": searchLines(r).join("\n") };
}
