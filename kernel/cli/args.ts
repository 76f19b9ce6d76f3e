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

/** "a, b,,c" → ["a", "b", "c"]: a comma-separated list as flags like --op-types take it. */
export function commaList(s: string): string[] {
  return s.split(",").map((x) => x.trim()).filter(Boolean);
}

/**
 * Walks `argv` once: `handle(arg, next)` is called per word; `next()` takes the following word as the option's
 * value (a UsageError naming the option when there is none). Each command's parser is then one switch.
 */
export function eachArg(argv: readonly string[], handle: (arg: string, next: () => string) => void): void {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    handle(arg, () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    });
  }
}
