// `ptq` command line: a table of subcommands, each in its own file, loaded only when named.
import { commands } from "./commands";

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

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ptq: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
