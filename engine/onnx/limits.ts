// Resource limits for what untrusted files and model shapes make us allocate: each limit's default, the environment
// variable that overrides it (PTQ_LIMIT_<NAME>) and one function to read it, so docs/limits.md and the code agree.
// A file or shape that needs more than a limit is refused before that much is allocated, and the error says how to
// raise the limit. Dependency-free on purpose: every layer (onnx, runtime, data, cli) may import it.

export interface LimitInfo {
  /** The environment variable that overrides the default for the whole process. */
  readonly env: string;
  readonly default: number;
  readonly unit: "bytes" | "pixels";
  /** What is counted, as the docs and error messages say it. */
  readonly what: string;
}

const GiB = 2 ** 30;

export const LIMITS = {
  imagePixels: {
    env: "PTQ_LIMIT_IMAGE_PIXELS",
    default: 100_000_000,
    unit: "pixels",
    what: "width × height one image declares, checked before it is decoded",
  },
  npzBytes: {
    env: "PTQ_LIMIT_NPZ_BYTES",
    default: GiB,
    unit: "bytes",
    what: "decompressed bytes of one .npz archive (all its arrays together, so also any one array)",
  },
  feedBytes: {
    env: "PTQ_LIMIT_FEED_BYTES",
    default: GiB,
    unit: "bytes",
    what: "bytes of one batch of inputs generated from a model's declared shapes (zeros, random data, image batches)",
  },
} as const satisfies Record<string, LimitInfo>;

export type LimitName = keyof typeof LIMITS;

/** Per-call overrides, the `limits` option of readers and generators; what is unset comes from the environment. */
export type Limits = { readonly [K in LimitName]?: number };

export class LimitError extends Error {
  override readonly name = "LimitError";
  constructor(
    message: string,
    readonly limit: LimitName,
  ) {
    super(message);
  }
}

/** The value of a limit: the per-call override, else its environment variable, else its default. */
export function limitOf(name: LimitName, overrides?: Limits, env: NodeJS.ProcessEnv = process.env): number {
  const info: LimitInfo = LIMITS[name];
  const given = overrides?.[name];
  if (given !== undefined) {
    if (!(given > 0)) throw new Error(`limits.${name} must be a positive number, got ${given}`);
    return given;
  }
  const text = env[info.env]?.trim();
  if (text === undefined || text === "") return info.default;
  const v = /^\d+(\.\d+)?(e\d+)?$/i.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new Error(`${info.env}=${text}: give a positive whole number of ${info.unit} (the default is ${info.default})`);
  }
  return v;
}

/** "1610612736 bytes (1.5 GiB)" / "3600000000 pixels". */
export function formatAmount(name: LimitName, n: number): string {
  const { unit } = LIMITS[name];
  if (unit !== "bytes" || n < 1024) return `${n} ${unit}`;
  const [v, u] = n >= GiB ? [n / GiB, "GiB"] : n >= 2 ** 20 ? [n / 2 ** 20, "MiB"] : [n / 1024, "KiB"];
  return `${n} bytes (${Number(v.toPrecision(3))} ${u})`;
}

/**
 * The error for `subject` (a phrase naming the file or input, ending in a verb: "x.png: declares") needing `amount`
 * against limit `max`, with how to raise it: the environment variable (CLI, kernel) or the `limits` option (API).
 */
export function overLimit(name: LimitName, subject: string, amount: number, max: number): LimitError {
  const { env } = LIMITS[name];
  const need = Number.isSafeInteger(amount) ? amount : Number.MAX_SAFE_INTEGER;
  return new LimitError(
    `${subject} ${formatAmount(name, amount)}, over the limit of ${formatAmount(name, max)} (${env}). ` +
      `If you trust it and have the memory, raise the limit: ${env}=${need}, or the option limits.${name}`,
    name,
  );
}

/** One generated input tensor, before it is allocated. */
export interface PlannedTensor {
  readonly name: string;
  readonly dims: readonly number[];
  readonly bytesPerElement: number;
}

/**
 * Refuses a batch of generated inputs (zeros, random values, decoded images laid out for the model) whose bytes
 * together pass the feedBytes limit, before any of it is allocated. `purpose` says what they were for.
 */
export function checkFeedBytes(tensors: readonly PlannedTensor[], purpose: string, overrides?: Limits): void {
  const max = limitOf("feedBytes", overrides);
  const sizes = tensors.map((t) => t.dims.reduce((a, d) => a * d, 1) * t.bytesPerElement);
  const total = sizes.reduce((a, b) => a + b, 0);
  if (!(total > max)) return;
  const big = sizes.indexOf(Math.max(...sizes));
  const t = tensors[big]!;
  const shape = `[${t.dims.join(", ")}]`;
  const others = tensors.length > 1 ? ` (${formatAmount("feedBytes", sizes[big]!)} of it for this input)` : "";
  throw overLimit("feedBytes", `${purpose}: input "${t.name}" with shape ${shape}${others} needs`, total, max);
}
