// The per-model override file the graph view's "Keep in float" writes and the next quantization reads:
// `<model>.ptq.json` beside `<model>.onnx`, in the format of `ptq quantize --config FILE` (docs/config.md), so
// `ptq quantize cnn.onnx -o cnn.int8.onnx --config cnn.ptq.json` applies it. "Keep in float" adds the node's exact
// name to "exclude"; "16-bit" sets `overrides[tensor].type` to "uint16" for the node's activations (QConfig.overrides,
// the tensors it reads from other nodes or graph inputs and those it writes). The file's other keys, selectors
// ({"regex": …}) and other overrides are kept. Pure, for tests.
import type { NodeSpec } from "../../engine/quant/options";
import type { TensorOverride } from "../../engine/quant/types";
import type { GraphNodeData } from "../../media/graph/types";

/** cnn.onnx → cnn.ptq.json (same folder); a name without .onnx gets .ptq.json appended. */
export function overridePath(modelPath: string): string {
  return modelPath.replace(/\.onnx$/i, "") + ".ptq.json";
}

/** cnn.onnx → cnn.int8.onnx (what the Quantize wizard writes beside it); undefined for a name without .onnx. */
export function quantizedTwinPath(floatPath: string): string | undefined {
  return /\.onnx$/i.test(floatPath) ? floatPath.replace(/\.onnx$/i, ".int8.onnx") : undefined;
}

/** cnn.int8.onnx → cnn.onnx; undefined when the name is not a quantized twin's. */
export function floatTwinPath(quantizedPath: string): string | undefined {
  return /\.int8\.onnx$/i.test(quantizedPath) ? quantizedPath.replace(/\.int8(\.onnx)$/i, "$1") : undefined;
}

export interface Overrides {
  /** Node selectors as the config file writes them: exact names or { "regex": "…" }. */
  exclude: NodeSpec[];
  /** Per-tensor overrides (QConfig.overrides), by tensor name. */
  overrides: Record<string, TensorOverride>;
  /** The file's other keys, written back unchanged. */
  rest: Record<string, unknown>;
}

/** Parses an override file's text; undefined text (no file yet) is an empty one. Errors name the file. */
export function parseOverrides(text: string | undefined, file: string): Overrides {
  if (text === undefined || text.trim() === "") return { exclude: [], overrides: {}, rest: {} };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${e instanceof Error ? e.message : String(e)}): fix or delete it, then try again.`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`${file} must hold a JSON object such as {"exclude": ["node name"]}: fix or delete it, then try again.`);
  }
  const { exclude, overrides, ...rest } = json as Record<string, unknown>;
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
  if (overrides !== undefined && !(isObject(overrides) && Object.values(overrides).every(isObject))) {
    throw new Error(`${file}: "overrides" must map tensor names to objects such as {"type": "uint16"}: fix or delete it, then try again.`);
  }
  const selector = (x: unknown) => typeof x === "string" || (typeof x === "object" && x !== null && typeof (x as { regex?: unknown }).regex === "string");
  if (exclude !== undefined && !(Array.isArray(exclude) && exclude.every(selector))) {
    throw new Error(`${file}: "exclude" must be a list of node names or {"regex": "…"} selectors: fix or delete it, then try again.`);
  }
  return { exclude: (exclude as NodeSpec[] | undefined) ?? [], overrides: (overrides as Record<string, TensorOverride> | undefined) ?? {}, rest };
}

/** The file's text: its other keys first, then overrides and exclude when they hold anything. */
function overridesText(o: Overrides): string {
  const json = { ...o.rest, ...(Object.keys(o.overrides).length ? { overrides: o.overrides } : {}), ...(o.exclude.length ? { exclude: o.exclude } : {}) };
  return JSON.stringify(json, null, 2) + "\n";
}

/** The node names (exact selectors) an override file keeps in float. */
export function excludedNames(o: Overrides): string[] {
  return o.exclude.filter((x): x is string => typeof x === "string");
}

/** The file's new text with `node` added to "exclude" (once), every other key kept. */
export function addExclude(text: string | undefined, node: string, file: string): { text: string; overrides: Overrides } {
  const o = parseOverrides(text, file);
  const next = { ...o, exclude: o.exclude.includes(node) ? o.exclude : [...o.exclude, node] };
  return { text: overridesText(next), overrides: next };
}

/** The tensors "16-bit" widens: what the node reads from other nodes or graph inputs, and what it writes. */
export function activationTensors(n: GraphNodeData): string[] {
  return [...new Set([...n.inputs.filter((t) => t.kind === "edge").map((t) => t.name), ...n.outputs.map((t) => t.name)])];
}

export const SIXTEEN_BIT = "uint16";

/** The file's new text with each tensor's override type set to uint16, its other override keys kept. */
export function addSixteenBit(text: string | undefined, tensors: readonly string[], file: string): { text: string; overrides: Overrides } {
  const o = parseOverrides(text, file);
  // fromEntries defines properties: a tensor named "__proto__" stays a key, never a prototype.
  const overrides = Object.fromEntries([...Object.entries(o.overrides), ...tensors.map((t) => [t, { ...(Object.hasOwn(o.overrides, t) ? o.overrides[t] : {}), type: SIXTEEN_BIT }] as const)]);
  const next = { ...o, overrides };
  return { text: overridesText(next), overrides: next };
}

/** The nodes whose every activation tensor the file makes 16-bit (drawn with a thick border). */
export function sixteenBitNodes(nodes: Iterable<GraphNodeData>, o: Overrides): string[] {
  const wide = (t: string) => Object.hasOwn(o.overrides, t) && (o.overrides[t]!.type === "uint16" || o.overrides[t]!.type === "int16");
  return [...nodes].filter((n) => { const ts = activationTensors(n); return ts.length > 0 && ts.every(wide); }).map((n) => n.name);
}
