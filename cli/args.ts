// Option parsing helpers shared by the `ptq` commands: values are checked here so every command rejects a bad one
// the same way (exit 2, naming the flag).

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {}

export function parsePositiveInt(s: string, flag: string, min = 1): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag} must be an integer ≥ ${min}, not "${s}"`);
  return n;
}

export function parsePositiveNumber(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, not "${s}"`);
  return n;
}

export function parseNonNegativeNumber(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${flag} must be a number ≥ 0, not "${s}"`);
  return n;
}

/** `v` if it is one of `allowed`, else a UsageError listing them. */
export function oneOf<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T {
  if (v === undefined || !allowed.includes(v as T)) throw new UsageError(`${flag} takes one of ${allowed.join(", ")}${v ? ` (got "${v}")` : ""}`);
  return v as T;
}

/** One `--shape` value: `NAME=1x3x48x320`, or `1x3x48x320` (name undefined) for a model with one input. */
export interface ShapeFlag {
  name: string | undefined;
  dims: number[];
  /** The value as typed, for messages. */
  text: string;
}

/**
 * Parses every `--shape` value. The input name is split off at the last "=", so names holding "=" or ":" (tf2onnx
 * writes `input:0`) work; sizes are whole numbers ≥ 1 joined by "x" (or ",").
 */
export function parseShapeFlags(values: readonly string[] | undefined): ShapeFlag[] {
  return (values ?? []).map((v) => {
    const eq = v.lastIndexOf("=");
    const name = eq >= 0 ? v.slice(0, eq) : undefined;
    const text = eq >= 0 ? v.slice(eq + 1) : v;
    const dims = text.split(/[x,]/i).map(Number);
    if (name === "" || text === "" || dims.some((d) => !Number.isSafeInteger(d) || d < 1)) {
      throw new UsageError(`--shape takes NAME=1x3x224x224 (or 1x3x224x224 for a one-input model): sizes ≥ 1 joined by "x", not "${v}"`);
    }
    return { name, dims, text: v };
  });
}

/** A model input as the shape helpers need it: a dim is fixed when it is a number ≥ 1; -1, 0, null or a name is not. */
export interface DeclaredInput {
  readonly name: string;
  readonly shape: readonly (number | string | null)[] | undefined;
}

const isFixed = (d: number | string | null): d is number => typeof d === "number" && d > 0;
/** The name of a symbolic dim; undefined for an unnamed one (onnxruntime reports those as "" or "?"). */
const symbolOf = (d: number | string | null): string | undefined => (typeof d === "string" && d !== "" && d !== "?" ? d : undefined);
const dimText = (d: number | string | null): string => (isFixed(d) ? String(d) : symbolOf(d) ?? "?");
export const shapeText = (shape: readonly (number | string | null)[]): string => `[${shape.map(dimText).join(", ")}]`;

/**
 * The `--shape` flags against the model's inputs, by input name. Unknown names, an unnamed shape for a model with
 * several inputs, a shape given twice, a wrong rank or a size that differs from a fixed dim are usage errors.
 */
export function resolveShapes(flags: readonly ShapeFlag[], inputs: readonly DeclaredInput[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const names = inputs.map((i) => `"${i.name}"`).join(", ");
  for (const f of flags) {
    if (f.name === undefined && inputs.length !== 1) {
      throw new UsageError(`--shape ${f.text}: the model has ${inputs.length} inputs (${names}); name one: --shape NAME=${f.dims.join("x")}`);
    }
    const input = f.name === undefined ? inputs[0]! : inputs.find((i) => i.name === f.name);
    if (!input) throw new UsageError(`--shape ${f.text}: the model has no input "${f.name}" (inputs: ${names})`);
    if (out[input.name]) throw new UsageError(`--shape given twice for input "${input.name}"`);
    const declared = input.shape;
    if (declared && declared.length !== f.dims.length) {
      throw new UsageError(`--shape ${f.text}: input "${input.name}" has rank ${declared.length} (${shapeText(declared)}), the shape has ${f.dims.length} dims`);
    }
    declared?.forEach((d, i) => {
      if (isFixed(d) && d !== f.dims[i]) {
        throw new UsageError(`--shape ${f.text}: axis ${i} of input "${input.name}" is fixed at ${d} (${shapeText(declared)})`);
      }
    });
    out[input.name] = f.dims;
  }
  return out;
}

/**
 * Checks that generated data can be shaped: every input's dims other than a dynamic first one (the batch) are fixed
 * or given by `shapes`. The error names the input, the dim and its axis, and shows the --shape flag to pass.
 */
export function requireShapes(inputs: readonly DeclaredInput[], shapes: Readonly<Record<string, readonly number[]>>): void {
  // The first input's symbolic first dim is the batch wherever another input names it (a state [layers, batch, hidden]):
  // engine/data/feeds batchSymbol, not imported so that this module, loaded by every command, stays free of the engine.
  const batch = inputs[0]?.shape?.[0];
  const isBatch = (d: unknown, i: number) => i === 0 || (typeof batch === "string" && batch !== "" && d === batch);
  for (const input of inputs) {
    if (shapes[input.name]) continue;
    // Unknown sizes appear as their symbol when it reads as a word (seq_len), else as N, N2, ...
    let unnamed = 0;
    const example = (input.shape ?? []).map((d, i) => {
      if (isFixed(d)) return String(d);
      if (isBatch(d, i)) return "1";
      if (typeof d === "string" && /^[A-Za-z_]\w{0,15}$/.test(d)) return d;
      return ++unnamed === 1 ? "N" : `N${unnamed}`;
    });
    const flag = `--shape ${/[\s"'$]/.test(input.name) ? JSON.stringify(input.name) : input.name}=${example.join("x")}`;
    if (input.shape === undefined) {
      throw new UsageError(`input "${input.name}" has unknown rank; give its full shape with --shape ${input.name}=…, or real data with --data`);
    }
    const axis = input.shape.findIndex((d, i) => !isBatch(d, i) && !isFixed(d));
    if (axis < 0) continue;
    const d = input.shape[axis]!;
    const what = symbolOf(d) !== undefined ? `symbolic dim "${d}"` : "an unknown dim";
    throw new UsageError(
      `input "${input.name}" ${shapeText(input.shape)} has ${what} at axis ${axis}, so random data cannot be shaped; ` +
        `give its sizes with ${flag} (numbers in place of the names), or real data with --data`,
    );
  }
}
