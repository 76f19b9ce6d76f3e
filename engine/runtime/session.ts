// Our small interface over onnxruntime-node: the rest of the code never imports it. createSession takes a Model,
// bytes or a path; resolves external data for models given in memory; casts outputs the binding cannot return;
// falls back from CUDA to CPU (the binding does not fall back by itself) and says why.
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import type { InferenceSession as OrtSession } from "onnxruntime-node";
import type { GraphProto } from "onnx-buf";
import { isIntegerType, type DataType } from "../onnx/dtype";
import { OnnxError } from "../onnx/errors";
import { readExternalFile } from "../onnx/external";
import { comparedConstants, unreadInitializers } from "../onnx/graph";
import { Model } from "../onnx/model";
import { valueInfoTensor } from "../onnx/proto";
import { skimGraph, skimUnreadInitializers } from "../onnx/skim";
import { castUnsafeOutputs, unsafeOutputs } from "./guard";
import { dtypeFromOrt, fromOrtTensor, toOrtTensor, type Feeds, type OutputTensor } from "./tensors";

export type ExecutionProvider = "cpu" | "cuda";
export type OptimizationLevel = "disabled" | "basic" | "extended" | "all";

export interface SessionOptions {
  ep?: ExecutionProvider;
  /** intra-op threads (default: onnxruntime's choice). Inter-op is 1 and execution sequential. */
  threads?: number;
  /** Graph optimization level; default "all" (onnxruntime's default). */
  optimization?: OptimizationLevel;
  /** Save the optimized graph here (use "basic" for a portable file; "all" adds CPU-specific ops). */
  optimizedModelPath?: string;
  /** Called once when CUDA was asked for but the session had to use the CPU. */
  onFallback?: (reason: string) => void;
  /** Extra session config entries (onnxruntime's `extra`); values are strings. */
  config?: Record<string, string>;
  /** onnxruntime's memory pattern (default on). Off for sessions with many large graph outputs (calibration). */
  memPattern?: boolean;
  /**
   * onnxruntime logs nothing below a fatal error for this session (its warnings and errors go to stderr from native
   * code): for checks whose failure the caller explains in its own words (verifyRunnable).
   */
  quiet?: boolean;
}

export interface IOInfo {
  name: string;
  isTensor: boolean;
  /** undefined for non-tensors or types the binding has no name for. */
  dtype: DataType | undefined;
  type: string | undefined;
  /**
   * Numbers are fixed (-1: dynamic), strings symbolic; [] for an input the file declares a scalar; undefined for an
   * unknown rank (onnxruntime reports no dims for both: the file tells them apart) and for an output without dims.
   */
  shape: readonly (number | string)[] | undefined;
  /** For an integer input, the values the graph tests it against (onnx/graph comparedConstants). */
  choices?: readonly number[];
}

export interface Session {
  readonly inputs: readonly IOInfo[];
  readonly outputs: readonly IOInfo[];
  /** The provider actually used. */
  readonly ep: ExecutionProvider;
  /** Why CUDA was not used, when it was asked for. */
  readonly fallbackReason: string | undefined;
  /** Graph outputs that were cast to float because the binding cannot return their type. */
  readonly castOutputs: readonly string[];
  run(feeds: Feeds, fetches?: readonly string[]): Promise<Record<string, OutputTensor>>;
  /** Frees the native session; safe to call more than once. */
  dispose(): Promise<void>;
}

type Ort = typeof import("onnxruntime-node");
let ortPromise: Promise<Ort> | undefined;
/** Loaded on first use so that importing this module costs nothing until a session is made. */
function ort(): Promise<Ort> {
  ortPromise ??= import("onnxruntime-node");
  return ortPromise;
}

/** What to hand onnxruntime: a path it reads itself, or bytes plus the external data files they refer to. */
interface Prepared {
  source: string | Uint8Array;
  externalData: { path: string; data: Uint8Array }[];
  label: string;
  castOutputs: string[];
  /** The main graph, as far as what the inputs declare needs it (a path is skimmed, not decoded). */
  graph: () => GraphProto;
}

function prepare(model: Model | Uint8Array): Prepared {
  if (model instanceof Model) return prepareModel(model, model.path ?? "<model>");
  const m = Model.fromBytes(model);
  if (unsafeOutputs(m.graph).length === 0 && !m.hasExternalData()) {
    return { source: model, externalData: [], label: "<bytes>", castOutputs: [], graph: () => m.graph };
  }
  return prepareModel(m, "<bytes>");
}

/**
 * `model` without the top-level initializers no node reads (tf2onnx leaves some in BlazeFace and M-LSD): onnxruntime
 * prints a warning for each one whenever it loads the model, which every float reference and check session did on
 * a user's file. A shallow copy (the tensors shared); the model itself where there is none.
 */
function withoutUnread(model: Model): Model {
  const g = model.graph;
  const unread = unreadInitializers(g);
  const kept = g.initializer.filter((t) => !unread.has(t.name));
  if (kept.length === g.initializer.length) return model;
  return Model.fromProto({ ...model.proto, graph: { ...g, initializer: kept } }, model.dir);
}

/** A file above this size is opened as it is even with unread initializers (decoding it to drop them costs its size
 *  in memory twice over): onnxruntime then warns of each. */
const DROP_UNREAD_MAX_BYTES = 256 * 1024 * 1024;

/**
 * Whether the file at `file` has top-level initializers no node reads (skimmed, not decoded) and is small enough to
 * be decoded and opened without them, as a Model is (withoutUnread): `ptq bench` and the evaluations open the
 * user's file by its path, and onnxruntime printed "Removing initializer … not used" for each, every session. A file
 * that cannot be skimmed is left to onnxruntime, whose error says what is wrong with it.
 */
function unreadToDrop(file: string): boolean {
  try {
    return statSync(file).size <= DROP_UNREAD_MAX_BYTES && (skimUnreadInitializers(file)?.length ?? 0) > 0;
  } catch {
    return false;
  }
}

function prepareModel(model: Model, label: string): Prepared {
  let m = withoutUnread(model);
  let castOutputs: string[] = [];
  if (unsafeOutputs(m.graph).length) {
    m = m.cloneSharingInitializers(); // castUnsafeOutputs adds Cast nodes and retypes outputs only
    castOutputs = castUnsafeOutputs(m.proto);
  }
  const externalData = m.externalLocations().map((loc) => {
    if (m.dir === undefined) throw new OnnxError(`the model refers to external data "${loc}" but was not loaded from a file`, label);
    return { path: loc, data: readExternalFile(loc, m.dir) };
  });
  return { source: m.toBytes(), externalData, label, castOutputs, graph: () => m.graph };
}

/**
 * The inputs as the file declares them where onnxruntime's metadata falls short: a scalar where it gives no dims, and
 * the constants an integer input is tested against. The graph is read only for a model with such an input.
 */
function declared(inputs: IOInfo[], graph: () => GraphProto): IOInfo[] {
  if (!inputs.some((i) => i.isTensor && (i.shape === undefined || isIntegerType(i.dtype)))) return inputs;
  let g: GraphProto;
  try {
    g = graph();
  } catch {
    return inputs; // onnxruntime read the file; what it said stands
  }
  const byName = new Map(g.input.map((v) => [v.name, v]));
  return inputs.map((i) => {
    const v = byName.get(i.name);
    if (!v || !i.isTensor) return i;
    const shape = i.shape ?? (valueInfoTensor(v)?.shape?.length === 0 ? [] : undefined);
    const choices = isIntegerType(i.dtype) ? comparedConstants(g, i.name) : [];
    return { ...i, shape, ...(choices.length ? { choices } : {}) };
  });
}

function info(meta: OrtSession.ValueMetadata): IOInfo {
  if (!meta.isTensor) return { name: meta.name, isTensor: false, dtype: undefined, type: undefined, shape: undefined };
  return {
    name: meta.name,
    isTensor: true,
    type: meta.type,
    dtype: dtypeFromOrt(meta.type),
    shape: meta.shape.length ? [...meta.shape] : undefined,
  };
}

/** A model to open: a path (onnxruntime reads the file itself), a Model, or its encoded bytes. */
export type SessionSource = Model | Uint8Array | string;

export async function createSession(model: SessionSource, options: SessionOptions = {}): Promise<Session> {
  const mod = await ort();
  if (typeof model !== "string") {
    const prepared = prepare(model);
    return wrap(await openOrt(mod, prepared, options), mod.Tensor, prepared);
  }
  // Let onnxruntime read the file itself (no decode here, which matters for big models); decode it here only when
  // an output type needs a cast (bf16/fp8 outputs fail creation, int4 ones show up in the metadata) or it holds
  // initializers nothing reads (unreadToDrop).
  let tried = false;
  if (!unreadToDrop(model)) {
    const direct: Prepared = { source: model, externalData: [], label: model, castOutputs: [], graph: () => skimGraph(model) };
    let opened: Opened | undefined;
    try {
      opened = await openOrt(mod, direct, options);
    } catch (e) {
      if (!(e instanceof OnnxError) || !/Unsupported data type/i.test(e.message)) throw e;
    }
    if (opened && !opened.session.outputMetadata.some((m) => m.isTensor && dtypeFromOrt(m.type) === undefined)) {
      return wrap(opened, mod.Tensor, direct);
    }
    await opened?.session.release();
    tried = true;
  }
  const prepared = prepareModel(Model.loadSync(model), model);
  // A fallback the direct open already reported is not reported twice.
  return wrap(await openOrt(mod, prepared, tried ? { ...options, onFallback: undefined } : options), mod.Tensor, prepared);
}

interface Opened {
  session: OrtSession;
  ep: ExecutionProvider;
  fallbackReason: string | undefined;
}

async function openOrt({ InferenceSession }: Ort, prepared: Prepared, options: SessionOptions): Promise<Opened> {
  const base: OrtSession.SessionOptions = {
    graphOptimizationLevel: options.optimization ?? "all",
    interOpNumThreads: 1,
    executionMode: "sequential",
    ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
    ...(options.optimizedModelPath ? { optimizedModelFilePath: options.optimizedModelPath } : {}),
    ...(prepared.externalData.length ? { externalData: prepared.externalData } : {}),
    ...(options.config ? { extra: { session: options.config } } : {}),
    ...(options.memPattern === false ? { enableMemPattern: false } : {}),
  };
  const open = (eps: string[], logSeverityLevel?: 0 | 1 | 2 | 3 | 4) => {
    const opts = { ...base, executionProviders: eps, ...(logSeverityLevel !== undefined ? { logSeverityLevel } : {}) };
    return typeof prepared.source === "string"
      ? InferenceSession.create(prepared.source, opts)
      : InferenceSession.create(prepared.source, opts);
  };
  const quiet = options.quiet ? 4 : undefined;
  let ep: ExecutionProvider = options.ep ?? "cpu";
  let fallbackReason: string | undefined;
  let session: OrtSession;
  try {
    const missing = ep === "cuda" ? missingCudaLibrary() : undefined;
    if (missing) {
      fallbackReason = `CUDA is not available (${missing}); running on the CPU instead`;
      ep = "cpu";
      options.onFallback?.(fallbackReason);
      session = await open(["cpu"], quiet);
    } else if (ep === "cuda") {
      try {
        // Fatal-only logging for this try: a missing-library failure is expected and explained below.
        session = await open(["cuda", "cpu"], 4);
      } catch (e) {
        fallbackReason = `CUDA is not available (${firstLine(e)}); running on the CPU instead`;
        ep = "cpu";
        options.onFallback?.(fallbackReason);
        session = await open(["cpu"], quiet);
      }
    } else {
      session = await open(["cpu"], quiet);
    }
  } catch (e) {
    throw new OnnxError(`onnxruntime could not load the model: ${firstLine(e)}`, prepared.label);
  }
  return { session, ep, fallbackReason };
}

/**
 * Says why CUDA cannot load, when its provider library is plainly absent from the binding's folder (the npm package
 * ships CPU only); checking first spares the user onnxruntime's own error log for a failure we expect.
 */
function missingCudaLibrary(): string | undefined {
  let dir: string;
  try {
    dir = path.join(path.dirname(require.resolve("onnxruntime-node")), "..", "bin", "napi-v6", process.platform, process.arch);
  } catch {
    return undefined;
  }
  const lib = process.platform === "win32" ? "onnxruntime_providers_cuda.dll" : "libonnxruntime_providers_cuda.so";
  return existsSync(path.join(dir, lib)) ? undefined : `${lib} is not installed next to onnxruntime-node`;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!.trim();
}

/** onnxruntime's whole message on one line (a run error puts what went wrong on the lines after the first). */
function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n").map((l) => l.trim()).filter(Boolean).join(" ");
}

/**
 * Why `dims` cannot be fed as `input`, where its declared shape fixes the rank or a dim (onnxruntime's own error
 * says "invalid dimensions … for the following indices"); undefined where it fits.
 */
function shapeMismatch(input: IOInfo, dims: readonly number[]): string | undefined {
  const shape = input.shape;
  if (!shape) return undefined;
  const text = `[${shape.map((d) => (typeof d === "number" && d < 0 ? "?" : d)).join(", ")}]`;
  if (dims.length !== shape.length) return `input "${input.name}" is [${dims.join(", ")}], rank ${dims.length}, but the model declares ${text}`;
  const axis = shape.findIndex((d, k) => typeof d === "number" && d > 0 && dims[k] !== d);
  if (axis < 0) return undefined;
  const fix = axis === 0 ? `feed batches of exactly ${shape[0]} sample(s)` : "resize the data to that size";
  return `input "${input.name}" is [${dims.join(", ")}], but the model fixes axis ${axis} at ${shape[axis]} (${text}): ${fix}`;
}

function wrap({ session: s, ep, fallbackReason }: Opened, Tensor: Ort["Tensor"], { castOutputs, label, graph }: Prepared): Session {
  const inputs = declared(s.inputMetadata.map(info), graph);
  const outputs = s.outputMetadata.map(info);
  let disposed = false;
  return {
    inputs,
    outputs,
    ep,
    fallbackReason,
    castOutputs,
    async run(feeds, fetches) {
      if (disposed) throw new OnnxError("the session was disposed", label);
      const ortFeeds: Record<string, InstanceType<Ort["Tensor"]>> = {};
      for (const i of inputs) {
        const f = feeds[i.name];
        if (!f) throw new OnnxError(`missing input "${i.name}" (the model needs: ${inputs.map((x) => x.name).join(", ")})`, label);
        const mismatch = shapeMismatch(i, f.dims);
        if (mismatch) throw new OnnxError(mismatch, label);
        ortFeeds[i.name] = toOrtTensor(Tensor, i.name, f, f.type !== undefined ? dtypeFromOrt(f.type) : i.dtype);
      }
      for (const name of Object.keys(feeds)) {
        if (!inputs.some((i) => i.name === name)) {
          throw new OnnxError(`"${name}" is not an input of the model (inputs: ${inputs.map((x) => x.name).join(", ")})`, label);
        }
      }
      const names = fetches ? [...fetches] : outputs.map((o) => o.name);
      for (const n of names) {
        const o = outputs.find((x) => x.name === n);
        if (!o) throw new OnnxError(`"${n}" is not an output of the model; add it as a graph output to fetch it`, label);
        // Fetching an int4/uint4 tensor aborts the whole Node process inside the binding: refuse instead.
        if (o.isTensor && o.type !== undefined && o.dtype === undefined) {
          throw new OnnxError(`output "${n}" is ${o.type}, which onnxruntime-node cannot return; expose a float (dequantized or cast) tensor instead`, label);
        }
      }
      let result: OrtSession.ReturnType;
      try {
        result = await s.run(ortFeeds, names);
      } catch (e) {
        throw new OnnxError(`onnxruntime failed to run the model: ${oneLine(e)}`, label);
      }
      const out: Record<string, OutputTensor> = {};
      for (const n of names) {
        const t = result[n];
        if (t) out[n] = fromOrtTensor(t, n);
      }
      return out;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await s.release();
    },
  };
}
