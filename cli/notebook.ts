// `ptq notebook run NOTEBOOK.ipynb (-o OUT.ipynb | --in-place)`: runs a notebook's TypeScript cells in a fresh PTQ
// kernel, outside VS Code, and saves it with its outputs — for CI (a notebook as a test: exit 1 when a cell fails)
// and for committing a notebook that reads well on GitHub.
import { existsSync } from "node:fs";
import path from "node:path";
import { runNotebook, serializeNotebook } from "../client/notebook/run";
import { oneOf, parsePositiveNumber, UsageError } from "./args";
import { checkOutput, errorMessage, writeFileAtomic } from "./files";
import { EP_FLAG, flagLines, HELP_FLAG, parseFlags, type Flag } from "./flags";

const FLAGS = [
  { name: "output", short: "o", arg: "FILE", help: "where to write the executed notebook (never over an existing file unless --force)" },
  { name: "in-place", help: "write the outputs into NOTEBOOK itself" },
  { name: "force", help: "let -o replace an existing file" },
  { name: "allow-errors", help: "keep running after a failing cell; exit 0 even if some failed" },
  { name: "timeout", arg: "S", help: "stop a cell (and its kernel) after S seconds", default: "no limit" },
  { ...EP_FLAG, help: "default execution provider for the cells' sessions" },
  { name: "json", help: "print a JSON summary instead of progress lines" },
  HELP_FLAG,
] as const satisfies Flag[];

const HELP = `Usage: ptq notebook run NOTEBOOK.ipynb (-o OUT.ipynb | --in-place) [options]

Runs every code cell of a TypeScript notebook, in order, in a fresh PTQ kernel process (the one VS Code uses;
cells import from "ptq" with nothing installed), with the notebook's folder as working directory, and writes the
notebook with each cell's outputs and execution count. Stops at the first failing cell (later cells are
cleared) unless --allow-errors.

Options:
${flagLines(FLAGS).join("\n")}

Exit codes: 0 all cells ran, 1 a cell failed (or the notebook could not be read), 2 usage.`;

/** out/kernel/main.js, beside the bundled CLI (out/cli.js) or, from sources, under the repository's out/. */
function kernelMain(): string {
  const candidates = [path.join(__dirname, "kernel", "main.js"), path.join(__dirname, "..", "out", "kernel", "main.js")];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`the kernel bundle is missing (looked for ${candidates.join(", ")}); run \`npm run build\` first`);
  return found;
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    process.stdout.write(HELP + "\n");
    return sub === undefined ? 2 : 0;
  }
  let cfg;
  try {
    if (sub !== "run") throw new UsageError(`unknown subcommand "${sub}" (only "run")`);
    const { values: v, positionals } = parseFlags(rest, FLAGS);
    if (v.help) {
      process.stdout.write(HELP + "\n");
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError(`give exactly one notebook (got ${positionals.length})`);
    const input = positionals[0]!;
    if (v["in-place"] && v.output) throw new UsageError("give -o OUT or --in-place, not both");
    if (!v["in-place"] && !v.output) throw new UsageError("say where the executed notebook goes: -o OUT.ipynb, or --in-place to write into the input");
    const output = v["in-place"] ? input : v.output!;
    if (!v["in-place"] && path.resolve(output) === path.resolve(input)) throw new UsageError("-o names the input notebook; use --in-place to write into it");
    if (!v["in-place"]) checkOutput(output, { flag: "-o", overwrite: v.force === true, overwriteFlag: "--force", inputs: [input] });
    cfg = {
      input,
      output,
      json: v.json === true,
      allowErrors: v["allow-errors"] === true,
      timeoutMs: v.timeout !== undefined ? parsePositiveNumber(v.timeout, "--timeout") * 1000 : undefined,
      ep: v.ep !== undefined ? oneOf("--ep", v.ep, ["cpu", "cuda"] as const) : ("cpu" as const),
    };
  } catch (e) {
    process.stderr.write(`ptq notebook: ${(e as Error).message}\n\n${HELP}\n`);
    return 2;
  }

  try {
    const result = await runNotebook(cfg.input, {
      kernelMain: kernelMain(),
      executionProvider: cfg.ep,
      allowErrors: cfg.allowErrors,
      cellTimeoutMs: cfg.timeoutMs,
      onCell: cfg.json ? undefined : (i, total, status) => {
        if (status !== "start") process.stderr.write(`cell ${i + 1}/${total}: ${status}\n`);
      },
    });
    writeFileAtomic(cfg.output, serializeNotebook(result.notebook));
    const summary = { notebook: cfg.input, output: cfg.output, executed: result.executed, failures: result.failures, durationMs: Math.round(result.durationMs) };
    if (cfg.json) process.stdout.write(JSON.stringify(summary) + "\n");
    else {
      for (const f of result.failures) process.stderr.write(`cell ${f.cell + 1} failed: ${f.name}: ${f.message.split("\n")[0]}\n`);
      process.stdout.write(`${result.executed} cells ran in ${(result.durationMs / 1000).toFixed(1)} s; wrote ${cfg.output}\n`);
    }
    return result.failures.length > 0 && !cfg.allowErrors ? 1 : 0;
  } catch (e) {
    process.stderr.write(`ptq notebook: ${errorMessage(e, { path: cfg.output, flag: "-o" })}\n`);
    return 1;
  }
}
