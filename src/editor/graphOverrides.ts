// The per-model override file the graph view's "Keep in float" writes and the next quantization reads:
// `<model>.ptq.json` beside `<model>.onnx`, in the format of `ptq quantize --config FILE` (docs/config.md), so
// `ptq quantize cnn.onnx -o cnn.int8.onnx --config cnn.ptq.json` applies it. "Keep in float" adds the node's exact
// name to "exclude"; the file's other keys and selectors ({"regex": …}) are kept. Pure, for tests.
import type { NodeSpec } from "../../engine/quant/options";

/** cnn.onnx → cnn.ptq.json (same folder); a name without .onnx gets .ptq.json appended. */
export function overridePath(modelPath: string): string {
  return modelPath.replace(/\.onnx$/i, "") + ".ptq.json";
}

export interface Overrides {
  /** Node selectors as the config file writes them: exact names or { "regex": "…" }. */
  exclude: NodeSpec[];
  /** The file's other keys, written back unchanged. */
  rest: Record<string, unknown>;
}

/** Parses an override file's text; undefined text (no file yet) is an empty one. Errors name the file. */
export function parseOverrides(text: string | undefined, file: string): Overrides {
  if (text === undefined || text.trim() === "") return { exclude: [], rest: {} };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${e instanceof Error ? e.message : String(e)}): fix or delete it, then try again.`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`${file} must hold a JSON object such as {"exclude": ["node name"]}: fix or delete it, then try again.`);
  }
  const { exclude, ...rest } = json as Record<string, unknown>;
  const selector = (x: unknown) => typeof x === "string" || (typeof x === "object" && x !== null && typeof (x as { regex?: unknown }).regex === "string");
  if (exclude !== undefined && !(Array.isArray(exclude) && exclude.every(selector))) {
    throw new Error(`${file}: "exclude" must be a list of node names or {"regex": "…"} selectors: fix or delete it, then try again.`);
  }
  return { exclude: (exclude as NodeSpec[] | undefined) ?? [], rest };
}

/** The node names (exact selectors) an override file keeps in float. */
export function excludedNames(o: Overrides): string[] {
  return o.exclude.filter((x): x is string => typeof x === "string");
}

/** The file's new text with `node` added to "exclude" (once), every other key kept. */
export function addExclude(text: string | undefined, node: string, file: string): { text: string; exclude: NodeSpec[] } {
  const o = parseOverrides(text, file);
  const exclude = o.exclude.includes(node) ? o.exclude : [...o.exclude, node];
  return { text: JSON.stringify({ ...o.rest, exclude }, null, 2) + "\n", exclude };
}
