// `ptq inspect MODEL [--json] [--no-shapes] [--dim NAME=SIZE]`: what a model holds (inputs, outputs, ops,
// parameters, opsets) and, by running it once on zeros, the shape of every intermediate tensor.
import { formatAmount, LIMITS, LimitError } from "../data/limits";
import { Model } from "../onnx/model";
import { formatSummary, summarize } from "../onnx/summary";

const HELP = `Usage: ptq inspect MODEL [options]

Prints a summary of an ONNX model: inputs and outputs with shapes and types, op histogram, parameter count and
bytes per element type, opsets, producer, and the shape of every intermediate tensor (found by running the model
once on zero-filled inputs with onnxruntime). Zero inputs over ${LIMITS.feedBytes.env} bytes in all (default
${formatAmount("feedBytes", LIMITS.feedBytes.default)}) are not built: the model is not run, the summary still prints.

Options:
  --json            print JSON instead of text
  --no-shapes       do not run the model (no intermediate shapes)
  --dim NAME=SIZE   size to use for a symbolic input dimension (repeatable; default 1)
  -h, --help        show this help`;

/** Where output goes; tests pass their own sinks. */
export interface CliIO {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: CliIO = { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s) };

export async function run(args: string[], io: CliIO = stdio): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    io.out(HELP + "\n");
    return 0;
  }
  let json = false;
  let shapes = true;
  const dims: Record<string, number> = {};
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--json") json = true;
    else if (a === "--no-shapes") shapes = false;
    else if (a === "--dim") {
      const m = /^([^=]+)=(\d+)$/.exec(args[++i] ?? "");
      if (!m) {
        io.err("ptq inspect: --dim takes NAME=SIZE, e.g. --dim batch=8\n");
        return 2;
      }
      dims[m[1]!] = Number(m[2]);
    } else if (a.startsWith("-")) {
      io.err(`ptq inspect: unknown option ${a}\n\n${HELP}\n`);
      return 2;
    } else files.push(a);
  }
  if (files.length !== 1) {
    io.err(`ptq inspect: give exactly one model file\n\n${HELP}\n`);
    return 2;
  }
  let model: Model;
  try {
    model = await Model.load(files[0]!);
  } catch (e) {
    io.err(`ptq inspect: ${(e as Error).message}\n`);
    return 1;
  }
  const summary = summarize(model);
  let intermediate: Awaited<ReturnType<typeof import("../runtime/shapes").intermediateShapes>> | undefined;
  let shapeError: string | undefined;
  if (shapes) {
    try {
      const { intermediateShapes } = await import("../runtime/shapes");
      intermediate = await intermediateShapes(model, { dims });
    } catch (e) {
      shapeError = e instanceof LimitError ? `the model was not run: ${e.message}` : (e as Error).message;
    }
  }
  if (json) {
    io.out(JSON.stringify({ ...summary, intermediateShapes: intermediate, shapeError }, null, 2) + "\n");
    return 0;
  }
  const out = [formatSummary(summary)];
  if (intermediate) {
    out.push("Intermediate tensors (shapes from one run on zeros; a name marks a symbolic dimension):");
    // Names can be long (exporters write scopes into them), so they go last.
    const rows = intermediate.map((t) => [t.op, t.dtype ?? "?", t.shape ? `[${t.shape.join(", ")}]` : `(${t.note ?? "unknown"})`, t.name]);
    const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) out.push(`  ${r.slice(0, 3).map((v, c) => v.padEnd(widths[c]!)).join("  ")}  ${r[3]}`);
  } else if (shapeError) {
    out.push(`Intermediate shapes unavailable: ${shapeError}`);
  }
  io.out(out.join("\n") + "\n");
  return 0;
}
