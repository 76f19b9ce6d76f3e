// The "Quantize model…" wizard: scheme, calibration data (a folder, or random data with a warning), advanced options
// behind one extra pick, and what to do when the output name is taken. Returns typed options or undefined (cancel).
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import * as vscode from "vscode";
import { excludedNames, overridePath, parseOverrides } from "../editor/graphOverrides";
import { loadModel } from "../editor/modelFile";
import { checkModel, parseShape, type ModelCheck } from "./modelCheck";
import { CALIBRATION_METHODS, DEFAULT_CALIBRATION_METHOD, type CalibrationMethod } from "../../engine/calibrate/types";
import { dataKind } from "../../engine/data/kind";
import { BLOCK_SIZES, defaultOptions, excludeChoices, freePath, IMAGE_PRESETS, judgedOutputChoices, outputPath, SCHEMES, type QuantizeOptions, type Scheme } from "./options";

export const RANDOM_DATA_WARNING = "Calibrating on random data: activation ranges will not match real inputs, so accuracy will suffer. Use a folder of real samples for a model you ship.";

async function pick<T>(title: string, items: Array<vscode.QuickPickItem & { value: T }>, placeHolder?: string): Promise<T | undefined> {
  const chosen = await vscode.window.showQuickPick(items, { title, ignoreFocusOut: true, placeHolder });
  return chosen?.value;
}

export async function runWizard(input: vscode.Uri): Promise<QuantizeOptions | undefined> {
  const name = input.path.split("/").pop();
  // The model first: a refusal comes before any question, and what will happen is said with the first one.
  let check: ModelCheck;
  try {
    check = checkModel((await loadModel(input)).model, input.fsPath);
  } catch (e) {
    void vscode.window.showErrorMessage(`Quantize ${name}: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
  if (check.refusal) {
    void vscode.window.showErrorMessage(`Quantize ${name}: ${check.refusal}`);
    return undefined;
  }
  const offered = SCHEMES.filter((s) => !check.unavailable[s.scheme]);
  const notOffered = SCHEMES.filter((s) => check.unavailable[s.scheme]).map((s) => `${s.label}: ${check.unavailable[s.scheme]}`);
  const scheme = await pick<Scheme>(`Quantize ${name}: scheme`, offered.map((s, i) => ({
    label: s.label,
    detail: s.detail,
    description: i === 0 ? "default" : undefined,
    value: s.scheme,
  })), [...check.notes, ...notOffered.map((l) => `not offered: ${l}`)].join(" · ") || undefined);
  if (!scheme) return undefined;
  const o = defaultOptions(input.fsPath, scheme);
  o.exclude = keptInFloat(input.fsPath);

  const lowBit = scheme === "int4-weights" || scheme === "fp4-weights";
  // Static INT8 needs data (a folder, or random samples with a warning). Low-bit weights and dynamic INT8 need none;
  // with samples the outputs are measured and the layers the bits would ruin kept at int8 or float
  // (engine/lowbit/protect, engine/quant/protect).
  const optional = lowBit || scheme === "int8-dynamic";
  const ruins = lowBit ? "4 bits" : "int8";
  const source = await pick<"folder" | "random" | "none">(`Quantize ${name}: calibration data`, [
    { label: "$(folder) Choose a folder of samples…", detail: optional ? `.npy / .npz / .pb tensors or images: measures the outputs and protects the layers ${ruins} would ruin` : ".npy / .npz / .pb tensors or images, a few hundred representative inputs", value: "folder" },
    optional
      ? { label: "No data", detail: "Weights only: the outputs are neither measured nor protected", value: "none" }
      : { label: "$(warning) Random data", detail: "No samples needed, but accuracy will suffer", value: "random" },
  ]);
  if (!source) return undefined;
  if (source === "folder") {
    const dir = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: "Use for calibration", defaultUri: vscode.Uri.joinPath(input, "..") });
    if (!dir?.[0]) return undefined;
    o.calibrationDir = dir[0].fsPath;
    // Images: the ranges are calibrated on the values the model gets, so the pixels are normalized as in training.
    if (dataKind(o.calibrationDir) === "images") {
      const preset = await pick(`Quantize ${name}: how the model's training normalized the images`, IMAGE_PRESETS.map((p, i) => ({
        label: p.label, detail: p.detail, description: i === 0 ? "default" : undefined, value: p,
      })), "Calibration ranges follow the values the model is fed: pick the transform its training used (the config file takes any other)");
      if (!preset) return undefined;
      if (preset.images) o.images = structuredClone(preset.images);
    }
  } else if (source === "random") {
    o.randomData = true;
  }

  // INT8 measures its choices at the outputs (16-bit activations, protected layers, the weight type): a model that
  // also exports intermediate tensors (feature maps kept for training) would have those decide, and on a large model
  // take most of the time (ISNet at 1024×1024: 38 minutes instead of 6). The user says which outputs the
  // application reads; the file keeps every output either way.
  if (scheme.startsWith("int8") && (o.calibrationDir || o.randomData)) {
    const choices = judgedOutputChoices((await loadModel(input)).model);
    if (choices.length) {
      const picked = await vscode.window.showQuickPick(choices, {
        title: `Quantize ${name}: the outputs your application reads`,
        placeHolder: "The measurements compare these with the float model's; pre-picked: the outputs nothing else in the model reads",
        canPickMany: true,
        ignoreFocusOut: true,
      });
      if (picked === undefined) return undefined;
      if (picked.length && picked.length < choices.length) o.judgeOutputs = picked.map((c) => c.name);
    }
  }

  // Sizes for symbolic dims, asked only when no data of the user's gives them (random samples, or the report of a
  // scheme without calibration data).
  if (check.symbolic.length && !o.calibrationDir) {
    o.shapes = {};
    for (const s of check.symbolic) {
      const dims = s.dims.map((d, i) => (typeof d === "number" ? String(d) : i === 0 ? "1" : d));
      const text = await vscode.window.showInputBox({
        title: `Quantize ${name}: shape of input "${s.name}"`,
        prompt: `The model leaves [${s.dims.join(", ")}] open: sizes to generate inputs with (e.g. ${dims.join("x")})`,
        ignoreFocusOut: true,
        validateInput: (v) => {
          const r = parseShape(v, s.dims);
          return typeof r === "string" ? r : undefined;
        },
      });
      if (text === undefined) return undefined;
      o.shapes[s.name] = parseShape(text, s.dims) as number[];
    }
  }

  const advanced = await pick<boolean>(`Quantize ${name}: options`, [
    { label: "Quantize with default settings", detail: defaultsLine(o), value: false },
    { label: "Advanced options…", value: true },
  ]);
  if (advanced === undefined) return undefined;
  if (advanced && !(await askAdvanced(o, input))) return undefined;

  const out = outputPath(o.input, scheme);
  if (existsSync(out)) {
    const choice = await vscode.window.showWarningMessage(`${out} already exists.`, { modal: true }, "Overwrite", "Keep Both");
    if (!choice) return undefined;
    o.output = choice === "Overwrite" ? out : freePath(out, existsSync);
  } else {
    o.output = out;
  }
  return o;
}

/**
 * The nodes the graph view's "Keep in float" listed in `<model>.ptq.json` (src/editor/graphOverrides): the wizard
 * starts from them. A file that cannot be read is said, and quantization goes on without it.
 */
function keptInFloat(model: string): string[] {
  const file = overridePath(model);
  if (!existsSync(file)) return [];
  try {
    // Exact names only: the wizard keeps nodes by name ({ "regex" } selectors apply with `ptq quantize --config`).
    return excludedNames(parseOverrides(readFileSync(file, "utf8"), file));
  } catch (e) {
    void vscode.window.showWarningMessage(`${e instanceof Error ? e.message : String(e)} (quantizing without its nodes kept in float)`);
    return [];
  }
}

function defaultsLine(o: QuantizeOptions): string {
  const kept = o.exclude.length ? `${o.exclude.length} node(s) kept in float (${path.basename(overridePath(o.input))})` : "no excluded nodes";
  return o.scheme.startsWith("int8")
    ? `${o.perChannel ? "per-channel" : "per-tensor"} weights${o.scheme === "int8-static" ? `, ${o.calibrationMethod} calibration` : ""}, ${kept}`
    : `blocks of ${o.blockSize}, ${kept}`;
}

/** How the picker shows each calibration method (a method without an entry shows its name). */
const METHOD_TEXT: Partial<Record<string, { label: string; detail: string }>> = {
  auto: { label: "Auto", detail: "MSE, unless another method reads the outputs better on every calibration row (measured; slower)" },
  mse: { label: "MSE", detail: "Clip where the quantization error is smallest (kept every test model within 0.3 pp)" },
  minmax: { label: "MinMax", detail: "The observed range" },
  entropy: { label: "Entropy", detail: "Clip to minimise KL divergence (good for long-tailed activations)" },
  percentile: { label: "Percentile", detail: "Clip at the 99.999th percentile" },
};

/** Weight rounding (INT8 static; FP4 and int4 with samples): nearest, or learned (int4: GPTQ) where it measures better
 *  (rounding auto). The engine's default is listed first and left unset in the config: FP4's and int4's auto; INT8's
 *  auto on light models and nearest on heavier ones (engine/quant/index ROUNDING_AUTO_MACS), offered as its own item. */
async function askRounding(o: QuantizeOptions, grid: "int8" | "int4" | "FP4"): Promise<boolean> {
  const nearest = { label: "Nearest", detail: `Each weight to its nearest ${grid} value`, value: "nearest" as const };
  const auto = { label: "Learned where it measures better", detail: "Fitted to each layer's outputs on half the samples and judged on the other half, both ways; kept only where it reads better (slower: 2–4× on the larger test models)", value: "auto" as const };
  // The default item picks "default": the config leaves rounding unset.
  const items =
    grid === "int8"
      ? [
          { label: "By the model's size", description: "default", detail: "Learned rounding kept where it reads better on light models (at most 200 M multiply-adds a sample), nearest on heavier ones, where its fits take 2–3× the conversion", value: "default" as const },
          nearest,
          auto,
        ]
      : [{ ...auto, description: "default", value: "default" as const }, nearest];
  const r = await pick<"nearest" | "auto" | "default">("Weight rounding", items);
  if (!r) return false;
  o.rounding = r === "default" ? undefined : r;
  return true;
}

async function askAdvanced(o: QuantizeOptions, input: vscode.Uri): Promise<boolean> {
  if (o.scheme.startsWith("int8")) {
    const pc = await pick<boolean>("Weight granularity", [
      { label: "Per-channel", description: "default", detail: "One scale per output channel: better accuracy", value: true },
      { label: "Per-tensor", detail: "One scale per weight tensor", value: false },
    ]);
    if (pc === undefined) return false;
    o.perChannel = pc;
  }
  if (o.scheme === "int8-static") {
    // The engine's methods, its default first and marked so.
    const methods = [DEFAULT_CALIBRATION_METHOD, ...CALIBRATION_METHODS.filter((m) => m !== DEFAULT_CALIBRATION_METHOD)];
    const m = await pick<CalibrationMethod>("Calibration method", methods.map((value) => ({
      label: METHOD_TEXT[value]?.label ?? value,
      description: value === DEFAULT_CALIBRATION_METHOD ? "default" : undefined,
      detail: METHOD_TEXT[value]?.detail,
      value,
    })));
    if (!m) return false;
    o.calibrationMethod = m;
    if (!(await askRounding(o, "int8"))) return false;
  } else if (!o.scheme.startsWith("int8")) {
    const sizes = BLOCK_SIZES.map(String);
    const bs = await vscode.window.showInputBox({ title: "Block size", value: String(o.blockSize), validateInput: (v) => (sizes.includes(v.trim()) ? undefined : `${sizes.slice(0, -1).join(", ")} or ${sizes.at(-1)}`) });
    if (bs === undefined) return false;
    o.blockSize = Number(bs.trim());
    // Learned rounding (FP4's codes, int4's GPTQ) needs samples to fit and judge on.
    if (o.calibrationDir && !(await askRounding(o, o.scheme === "fp4-weights" ? "FP4" : "int4"))) return false;
  }
  // Picked from the model's own nodes, so a name is taken exactly (a typed list would split "a,b" and read "/x/" as
  // a pattern).
  const nodes = excludeChoices((await loadModel(input)).model).map((c) => ({ ...c, picked: o.exclude.includes(c.name) }));
  const ex = await vscode.window.showQuickPick(nodes, { title: "Nodes to keep in float (optional: pick none to quantize all)", canPickMany: true, ignoreFocusOut: true, matchOnDescription: true });
  if (ex === undefined) return false;
  o.exclude = ex.map((c) => c.name);
  return true;
}
