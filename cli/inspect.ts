// `ptq inspect MODEL [--json] [--no-shapes] [--shape NAME=DIMS] [--dim NAME=SIZE]`: what a model holds (inputs,
// outputs, ops, parameters, opsets) and, by running it on zeros, the shape of every intermediate tensor. A dim that
// depends on a symbolic input dim prints as that symbol (or "?"), never as the size the run happened to use.
import { formatAmount, LIMITS, LimitError } from "../engine/onnx/limits";
import { Model } from "../engine/onnx/model";
import { makeValueInfo, valueInfoTensor, type Dim } from "../engine/onnx/proto";
import { formatSummary, summarize } from "../engine/onnx/summary";
import type { IntermediateShape } from "../engine/runtime/shapes";
import { parsePositiveInt, parseShapeFlags, resolveShapes, shapeText, UsageError, type DeclaredInput } from "./args";
import { flagLines, HELP_FLAG, parseFlags, SHAPE_FLAG, type Flag } from "./flags";

/** Sizes an unknown dim gets in the run unless --dim or --shape says otherwise: a batch dim 1; any other 64, large
 * enough that a dim divided by the network's strides (32 in most CNNs) still changes when the run doubles it. */
const PROBE = { batch: 1, other: 64 };
/** Past this many symbolic dims, one run marks every dependent dim "?" instead of one run per symbol. */
const MAX_SYMBOL_RUNS = 4;

const FLAGS = [
  { name: "json", help: "print JSON instead of text" },
  { name: "no-shapes", help: "do not run the model (no intermediate shapes)" },
  { ...SHAPE_FLAG, help: "run with this input shape, e.g. x=1x3x48x320 (repeatable; NAME= may be left out for a one-input model): the table then shows the sizes at that shape" },
  { name: "dim", arg: "NAME=SIZE", multiple: true, help: "size to run a symbolic input dimension at, which stays symbolic in the table (repeatable)", default: `${PROBE.batch} for a first dimension, ${PROBE.other} for any other` },
  HELP_FLAG,
] as const satisfies Flag[];

const HELP = `Usage: ptq inspect MODEL [options]

Prints a summary of an ONNX model: inputs and outputs with shapes and types, op histogram, parameter count and
bytes per element type, opsets, producer, and the shape of every intermediate tensor (found by running the model
on zero-filled inputs with onnxruntime). A dimension that follows a symbolic input dimension prints as that
symbol's name, or "?" when it follows several or an unnamed one. Zero inputs over ${LIMITS.feedBytes.env} bytes
in all (default ${formatAmount("feedBytes", LIMITS.feedBytes.default)}) are not built: the model is not run, the summary still prints.

Options:
${flagLines(FLAGS).join("\n")}

Exit codes: 0 ok, 1 the model cannot be read, 2 usage.`;

/** Where output goes; tests pass their own sinks. */
export interface CliIO {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: CliIO = { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s) };

interface Args {
  file: string;
  json: boolean;
  shapes: boolean;
  dims: Record<string, number>;
  shapeFlags: ReturnType<typeof parseShapeFlags>;
}

function parse(argv: string[]): Args | "help" {
  const { values: v, positionals } = parseFlags(argv, FLAGS);
  if (v.help) return "help";
  if (positionals.length !== 1) throw new UsageError(`give exactly one model file (got ${positionals.length})`);
  const dims: Record<string, number> = {};
  for (const d of v.dim ?? []) {
    const eq = d.lastIndexOf("=");
    if (eq <= 0) throw new UsageError(`--dim takes NAME=SIZE, e.g. --dim batch=8, not "${d}"`);
    dims[d.slice(0, eq)] = parsePositiveInt(d.slice(eq + 1), `--dim ${d.slice(0, eq)}`);
  }
  return { file: positionals[0]!, json: v.json === true, shapes: v["no-shapes"] !== true, dims, shapeFlags: parseShapeFlags(v.shape) };
}

const fixed = (d: Dim): d is number => typeof d === "number" && d > 0;
/** Internal names for unnamed dims (null, -1, 0) in the run's copy of the model; they print as "?". */
const UNNAMED = "ptq.unnamed.";

interface RunPlan {
  /** The copy of the model to run: given shapes fixed, every unknown dim named. */
  model: Model;
  /** Each symbol's size in the run. */
  sizes: Record<string, number>;
  /** The inputs' shapes as run (symbols at their sizes), for the header. */
  inputs: { name: string; dims: number[] }[];
}

/** The model with --shape inputs fixed and every other unknown dim a named symbol, with the size each gets. */
function plan(model: Model, shapes: Record<string, number[]>, dims: Record<string, number>): RunPlan {
  const m = model.clone();
  const inits = new Set(m.graph.initializer.map((t) => t.name));
  const sizes: Record<string, number> = {};
  const inputs: RunPlan["inputs"] = [];
  let unnamed = 0;
  m.graph.input.forEach((v, k) => {
    const t = inits.has(v.name) ? undefined : valueInfoTensor(v);
    if (!t?.shape) return;
    const given = shapes[v.name];
    const shape: Dim[] = given ?? t.shape.map((d, axis) => {
      if (fixed(d)) return d;
      const name = typeof d === "string" && d !== "" ? d : `${UNNAMED}${unnamed++}`;
      sizes[name] ??= dims[name] ?? (axis === 0 ? PROBE.batch : PROBE.other);
      return name;
    });
    m.graph.input[k] = makeValueInfo(v.name, t.elemType, shape);
    inputs.push({ name: v.name, dims: shape.map((d) => (typeof d === "number" ? d : sizes[d!]!)) });
  });
  return { model: m, sizes, inputs };
}

/** `model` with every symbol except `keep` fixed at its size. */
function fixAllBut(model: Model, sizes: Record<string, number>, keep: string): Model {
  const m = model.clone();
  m.graph.input.forEach((v, k) => {
    const t = valueInfoTensor(v);
    if (!t?.shape) return;
    m.graph.input[k] = makeValueInfo(v.name, t.elemType, t.shape.map((d) => (typeof d === "string" && d !== keep ? sizes[d]! : d)));
  });
  return m;
}

/**
 * Intermediate shapes with every dim that follows a symbol marked: one pair of runs per symbol (the others fixed)
 * names the symbol each dim follows; a dim that follows several, or an unnamed one, is "?".
 */
async function symbolicShapes(p: RunPlan): Promise<IntermediateShape[]> {
  const { intermediateShapes } = await import("../engine/runtime/shapes");
  const symbols = Object.keys(p.sizes);
  const display = (s: string) => (s.startsWith(UNNAMED) ? "?" : s);
  if (symbols.length <= 1 || symbols.length > MAX_SYMBOL_RUNS) {
    const shapes = await intermediateShapes(p.model, { dims: p.sizes });
    for (const t of shapes) t.shape = t.shape?.map((d) => (typeof d === "string" ? display(symbols.length === 1 ? symbols[0]! : d) : d));
    return shapes;
  }
  const runs: IntermediateShape[][] = [];
  for (const s of symbols) runs.push(await intermediateShapes(fixAllBut(p.model, p.sizes, s), { dims: p.sizes }));
  return runs[0]!.map((t, i) => {
    if (!t.shape) return t;
    const shape = t.shape.map((d, axis) => {
      const follows = symbols.filter((_, r) => typeof runs[r]![i]?.shape?.[axis] === "string");
      if (follows.length === 0) return d;
      return follows.length === 1 ? display(follows[0]!) : "?";
    });
    const note = runs.map((r) => r[i]?.note).find((n) => n !== undefined);
    return { ...t, shape, ...(note !== undefined ? { note } : {}) };
  });
}

export async function run(args: string[], io: CliIO = stdio): Promise<number> {
  let a: Args | "help";
  try {
    a = parse(args);
  } catch (e) {
    io.err(`ptq inspect: ${(e as Error).message}\n\nRun \`ptq inspect --help\` for options.\n`);
    return 2;
  }
  if (a === "help") {
    io.out(HELP + "\n");
    return 0;
  }
  let model: Model;
  try {
    model = await Model.load(a.file);
  } catch (e) {
    io.err(`ptq inspect: ${(e as Error).message}\n`);
    return 1;
  }
  const inits = new Set(model.graph.initializer.map((t) => t.name));
  const declared: DeclaredInput[] = model.graph.input.filter((v) => !inits.has(v.name)).map((v) => ({ name: v.name, shape: valueInfoTensor(v)?.shape }));
  let shapes: Record<string, number[]>;
  try {
    shapes = resolveShapes(a.shapeFlags, declared);
  } catch (e) {
    io.err(`ptq inspect: ${(e as Error).message}\n`);
    return 2;
  }
  const summary = summarize(model);
  let intermediate: IntermediateShape[] | undefined;
  let ranWith: RunPlan["inputs"] | undefined;
  let shapeError: string | undefined;
  if (a.shapes) {
    let p: RunPlan | undefined;
    try {
      p = plan(model, shapes, a.dims);
      ranWith = p.inputs;
      intermediate = await symbolicShapes(p);
    } catch (e) {
      shapeError = e instanceof LimitError ? `the model was not run: ${e.message}` : (e as Error).message;
      // Sizes picked for unknown dims may be too small for the model (an audio frame, a reflect pad): say which.
      if (!(e instanceof LimitError) && p && Object.keys(p.sizes).length > 0) {
        shapeError += `. It ran with ${p.inputs.map((i) => `${i.name} ${shapeText(i.dims)}`).join(", ")}, sizes picked for its symbolic dims; give real ones with --shape NAME=DIMS`;
      }
    }
  }
  if (a.json) {
    io.out(JSON.stringify({ ...summary, intermediateShapes: intermediate, shapeRunInputs: intermediate ? ranWith : undefined, shapeError }, null, 2) + "\n");
    return 0;
  }
  const out = [formatSummary(summary)];
  if (intermediate) {
    const runAt = ranWith?.map((i) => `${i.name} ${shapeText(i.dims)}`).join(", ");
    out.push(`Intermediate tensors (shapes from running on zeros${runAt ? ` with ${runAt}` : ""}; a name or ? marks a dimension that follows a symbolic input dimension):`);
    // Names can be long (exporters write scopes into them), so they go last.
    const rows = intermediate.map((t) => [t.op, t.dtype ?? "?", t.shape ? shapeText(t.shape) : `(${t.note ?? "unknown"})`, t.name]);
    const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) out.push(`  ${r.slice(0, 3).map((v, c) => v.padEnd(widths[c]!)).join("  ")}  ${r[3]}`);
  } else if (shapeError) {
    out.push(`Intermediate shapes unavailable: ${shapeError}`);
  }
  io.out(out.join("\n") + "\n");
  return 0;
}
