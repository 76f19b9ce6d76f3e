// Option parsing helpers shared by `ptq bench` and `ptq report`: numbers are checked here so both commands
// reject a bad value the same way (exit 2, naming the flag).

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
