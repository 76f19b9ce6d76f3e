// `ptq` command line: a table of subcommands, each in its own file, loaded only when named.
import { removeAllTempDirs } from "../engine/onnx/tempdir";
import { commands } from "./commands";
import { errorMessage } from "./files";

const VERSION = "0.1.0";

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    "Usage: ptq <command> [options]",
    "",
    "Post-training quantization of ONNX models (PTQ Studio).",
    "",
    "Commands:",
    ...lines,
    "",
    "Run `ptq <command> --help` for a command's options.",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage() + "\n");
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-v") {
    process.stdout.write(VERSION + "\n");
    return 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`ptq: unknown command "${name}".\n\n${usage()}\n`);
    return 2;
  }
  const mod = await command.load();
  return mod.run(rest);
}

/**
 * Temp folders the engine registered (onnx/tempdir: ptq-pre-* holds a copy as large as the model) go at exit and on
 * Ctrl-C / SIGTERM (the wizard cancels with SIGTERM), which otherwise end the process without running any finally.
 * The exit code is the shell's for a signal: 128 + its number.
 */
function removeTempOnExit(): void {
  process.on("exit", removeAllTempDirs);
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.once(signal, () => {
      removeAllTempDirs();
      process.stderr.write(`\nptq: stopped (${signal})\n`);
      process.exit(code);
    });
  }
}

removeTempOnExit();
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ptq: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  },
);
