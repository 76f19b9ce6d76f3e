// A command's flags as one table: node:util parseArgs reads argv with it and the help's option lines are printed
// from it, so a flag, its value name and its default are written once. `ptq quantize` builds its table from
// engine/quant/options; the other commands declare theirs with `flags(...)`.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./args";

export interface Flag {
  /** The long name, without "--". */
  readonly name: string;
  readonly short?: string;
  /** The value's name in help; a flag without one is a boolean. */
  readonly arg?: string;
  /** May be given several times (the values come as a list). */
  readonly multiple?: boolean;
  readonly help: string;
  /** The default as help states it. */
  readonly default?: string | number | (() => string | number | undefined);
}

/** A table's parsed values, typed by it: a string (or list) for a flag with a value, a boolean for one without. */
export type FlagValues<F extends readonly Flag[]> = {
  [K in F[number] as K["name"]]?: K extends { arg: string } ? (K extends { multiple: true } ? string[] : string) : boolean;
};

export type ParseOptions = NonNullable<ParseArgsConfig["options"]>;

/** The table as node:util parseArgs options. */
export function parseOptions(table: readonly Flag[]): ParseOptions {
  return Object.fromEntries(table.map((f) => [f.name, { type: f.arg ? "string" : "boolean", ...(f.short && { short: f.short }), ...(f.multiple && { multiple: true }) }]));
}

/** node:util's errors as usage errors; its words for an unknown flag run on about "--" and positionals. */
export function usageError(e: unknown): UsageError {
  const unknown = (e as NodeJS.ErrnoException).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" ? /'([^']+)'/.exec((e as Error).message)?.[1] : undefined;
  return new UsageError(unknown ? `unknown option ${unknown}` : (e as Error).message);
}

/** Reads argv with the table (strict: an unknown flag or a missing value is a UsageError). */
export function parseFlags<const F extends readonly Flag[]>(argv: readonly string[], table: F): { values: FlagValues<F>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options: parseOptions(table), allowPositionals: true, strict: true });
    return { values: values as FlagValues<F>, positionals };
  } catch (e) {
    throw usageError(e);
  }
}

const COLUMN = 28;
const WIDTH = 118;

/** "  --flag ARG   help", the help wrapped under its column; a name that fills the column gets a line of its own. */
export function helpLine(names: string, text: string): string {
  const lines: string[] = [];
  let line = `  ${names}`.padEnd(COLUMN - 1);
  if (names.length + 2 > COLUMN - 2) {
    lines.push(line);
    line = "".padEnd(COLUMN - 1);
  }
  for (const w of text.split(" ")) {
    if (line.length + 1 + w.length > WIDTH && line.trim() !== "") {
      lines.push(line);
      line = "".padEnd(COLUMN - 1);
    }
    line += ` ${w}`;
  }
  lines.push(line);
  return lines.join("\n");
}

/** The default of a flag as help states it ("" when none). */
export function flagDefault(f: Pick<Flag, "default">): string {
  const d = typeof f.default === "function" ? f.default() : f.default;
  return d === undefined ? "" : String(d);
}

/** One help line per flag, its default at the end. */
export function flagLines(table: readonly Flag[]): string[] {
  return table.map((f) => {
    const d = flagDefault(f);
    return helpLine(`${f.short ? `-${f.short}, ` : ""}--${f.name}${f.arg ? ` ${f.arg}` : ""}`, `${f.help}${d ? ` (default ${d})` : ""}`);
  });
}

/** Flags several commands share. */
export const HELP_FLAG = { name: "help", short: "h", help: "show this help" } as const satisfies Flag;
export const SHAPE_FLAG = {
  name: "shape", arg: "[NAME=]DIMS", multiple: true,
  help: "full shape of generated inputs, e.g. x=1x3x48x320 (repeatable; NAME= may be left out for a one-input model): needed where an input has a symbolic dim other than the batch",
} as const satisfies Flag;
export const EP_FLAG = { name: "ep", arg: "cpu|cuda", help: "execution provider", default: "cpu" } as const satisfies Flag;
export const THREADS_FLAG = { name: "threads", arg: "N", help: "intra-op threads", default: "all cores" } as const satisfies Flag;
