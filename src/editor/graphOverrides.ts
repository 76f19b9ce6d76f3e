// The per-model override file the graph view's "Keep in float" writes and the next quantization reads:
// `<model>.ptq.json` beside `<model>.onnx`, a JSON object whose "exclude" lists node names (exact, as the CLI's
// --exclude-node takes them). Other keys in the file are kept as they are. Pure, for tests; the editor writes it.

/** cnn.onnx → cnn.ptq.json (same folder); a name without .onnx gets .ptq.json appended. */
export function overridePath(modelPath: string): string {
  return modelPath.replace(/\.onnx$/i, "") + ".ptq.json";
}

export interface Overrides {
  exclude: string[];
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
  if (exclude !== undefined && !(Array.isArray(exclude) && exclude.every((x) => typeof x === "string"))) {
    throw new Error(`${file}: "exclude" must be a list of node names (strings): fix or delete it, then try again.`);
  }
  return { exclude: (exclude as string[] | undefined) ?? [], rest };
}

/** The file's new text with `node` added to "exclude" (once), every other key kept. */
export function addExclude(text: string | undefined, node: string, file: string): { text: string; exclude: string[] } {
  const o = parseOverrides(text, file);
  const exclude = o.exclude.includes(node) ? o.exclude : [...o.exclude, node];
  return { text: JSON.stringify({ ...o.rest, exclude }, null, 2) + "\n", exclude };
}
