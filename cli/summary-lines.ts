// Lines of ptq quantize's text summaries that a real model would otherwise fill by the hundred: the nodes left in
// float (INT8 and low-bit) and a low-bit file's layers. Every node's and layer's own figures stay in --json.
import type { LowBitReport } from "../engine/lowbit/index";

/** Names shown per group of float nodes; the rest are counted (every node's own reason: --json float). */
const GROUP_NAMES = 3;

/**
 * The nodes left in float, one line per reason: a node alone as "float: NAME (OP): REASON"; nodes whose reasons read
 * the same but for their parenthesized figures as one line with their op types, the first names and that reason
 * without the figures. A real model leaves dozens float for a handful of reasons (ppocr-v4-rec-en: 93 lines, one
 * per node, before; 5 and a pointer now), and each node's own reason stays in --json's `float`.
 */
export function floatLines(float: readonly { name: string; opType: string; reason: string }[]): string[] {
  const groups = new Map<string, { name: string; opType: string; reason: string }[]>();
  for (const f of float) {
    const key = f.reason.replace(/\s*\([^()]*\)/g, "");
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  const lines: string[] = [];
  for (const [reason, nodes] of groups) {
    if (nodes.length === 1) {
      const f = nodes[0]!;
      lines.push(`  float: ${f.name || "(unnamed)"} (${f.opType}): ${f.reason}`);
      continue;
    }
    const ops = new Map<string, number>();
    for (const n of nodes) ops.set(n.opType, (ops.get(n.opType) ?? 0) + 1);
    const names = nodes.slice(0, GROUP_NAMES).map((n) => n.name || "(unnamed)").join(", ");
    const more = nodes.length > GROUP_NAMES ? ` and ${nodes.length - GROUP_NAMES} more` : "";
    const byCount = [...ops].sort((a, b) => b[1] - a[1]);
    lines.push(`  float, ${nodes.length} nodes: ${byCount.map(([op, n]) => `${op} ×${n}`).join(", ")} (${names}${more}): ${reason}`);
  }
  if (lines.length < float.length) lines.push("  (each float node's own reason: --json, `float`)");
  return lines;
}

/** Layers a low-bit summary lists one per line; past this, the ones with the lowest SQNR and a count of the rest. */
const LAYER_LINES = 10;

/**
 * The low-bit layers to print, one line each (`line`): all of them up to LAYER_LINES, else the LAYER_LINES with the
 * lowest output SQNR (weight SQNR where the outputs were not measured) in the report's order, and a line for the
 * rest (blazeface-back's int4 file: 69 layer lines before).
 */
export function layerLines(layers: LowBitReport["layers"], line: (l: LowBitReport["layers"][number]) => string): string[] {
  if (layers.length <= LAYER_LINES) return layers.map(line);
  const key = (l: LowBitReport["layers"][number]) => l.outputSqnrDb ?? l.sqnrDb;
  const worst = new Set([...layers].sort((a, b) => key(a) - key(b)).slice(0, LAYER_LINES));
  const rest = layers.filter((l) => !worst.has(l));
  const by = layers.some((l) => l.outputSqnrDb !== undefined) ? "output" : "weight";
  const range = rest.map(key);
  return [
    `  the ${LAYER_LINES} layers of lowest ${by} SQNR:`,
    ...layers.filter((l) => worst.has(l)).map(line),
    `  and ${rest.length} more at ${Math.min(...range).toFixed(1)}–${Math.max(...range).toFixed(1)} dB ${by} SQNR (every layer: --json, \`layers\`)`,
  ];
}
