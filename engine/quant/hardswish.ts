// HardSwish written out as x · Clip(x + 3, 0, 6) / 6 (PaddlePaddle's exporter, at every opset; 7 of the 29 corpus
// and held-out models), rewritten as x · HardSigmoid(x) with α = 1/6, β = 1/2: the same function, in two ops instead
// of four. On onnxruntime's CPU provider that is what makes the difference in float: its NCHWc layout transformer
// keeps Conv → HardSigmoid → Mul in its blocked layout and fuses them, while a scalar Add or Div between Convs sends
// every activation through ReorderOutput/ReorderInput and four passes of its own (PP-OCRv3's English recogniser, batch
// 8, one thread: FP32 101 → 69 ms). It is the float baseline INT8 is read against (bench/int8-speed.ts fp32-fused,
// `npm run demo`), not a step of quantization: quantized in this form, the recognisers lost 0.5–1.8 dB at the output
// on held-out lines and ran no faster (docs/int8-speed.md "HardSwish written out").
import type { GraphProto, NodeProto } from "onnx-buf";
import { constantsToInitializers, consumers, dropUnreadInitializers, uniqueName, usedNames } from "../onnx/graph";
import type { Model } from "../onnx/model";
import { attr, attrFloat, makeNode } from "../onnx/proto";
import { scalarOf, scalarOperand } from "./preprocess";

const SIXTH = 1 / 6;

/**
 * A copy of a float model with its top-level written-out HardSwish rewritten (Constant nodes become initializers
 * first, as exporters write the 3, 0 and 6 as Constants), the constants nothing reads any more dropped. The model
 * given is not changed.
 */
export function fuseHardSwish(model: Model): { model: Model; rewritten: number } {
  const m = model.clone();
  constantsToInitializers(m.graph);
  const { rewritten, constants } = hardSwishAsHardSigmoid(m.graph, m.dir);
  dropUnreadInitializers(m.graph, new Set(constants));
  return { model: m, rewritten };
}

/**
 * Each Add(x, 3) → Clip(·, 0, 6) → Mul(x, ·) → Div(·, 6) (or Mul(·, 1/6)), the operands in either order, each of the
 * first three read only by the next and none a graph output, replaced by HardSigmoid(x; 1/6, 1/2) → Mul(x, ·) writing
 * the last node's output. Clip's bounds are read from its inputs (opset ≥ 11) or attributes (older). Left as they
 * are: a chain whose constants are not those exactly (a float32 1/6 counts), a branch read elsewhere (the Add's x + 3,
 * the Clip's output), a chain inside a subgraph. Returns how many were rewritten and the constants the removed nodes
 * read (for the caller to drop where nothing else reads them).
 */
export function hardSwishAsHardSigmoid(g: GraphProto, dir: string | undefined): { rewritten: number; constants: string[] } {
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const readers = consumers(g);
  const outputs = new Set(g.output.map((o) => o.name));
  const taken = usedNames(g);
  const scalar = (name: string | undefined): number | undefined => (name ? scalarOf(inits, name, dir) : undefined);
  // The other input of an Add / Mul whose scalar constant operand is `value` (preprocess's scalarOperand).
  const withConstant = (n: NodeProto, value: (v: number) => boolean): string | undefined => {
    const operand = n.opType === "Add" || n.opType === "Mul" ? scalarOperand(n, inits, dir) : undefined;
    return operand && value(operand[1]) ? operand[0] : undefined;
  };
  const onlyReader = (t: string): NodeProto | undefined => {
    const r = readers.get(t);
    return !outputs.has(t) && r?.length === 1 ? r[0] : undefined;
  };
  const clipBounds = (n: NodeProto): [number | undefined, number | undefined] =>
    n.input.length > 1 ? [scalar(n.input[1]), scalar(n.input[2])] : [attrFloat(n, "min"), attrFloat(n, "max")];

  const replace = new Map<NodeProto, NodeProto[]>();
  const drop = new Set<NodeProto>();
  for (const add of g.node) {
    if (add.opType !== "Add" || drop.has(add)) continue;
    const x = withConstant(add, (v) => v === 3);
    if (!x) continue;
    const clip = onlyReader(add.output[0]!);
    if (clip?.opType !== "Clip" || clip.input[0] !== add.output[0]) continue;
    const [lo, hi] = clipBounds(clip);
    if (lo !== 0 || hi !== 6) continue;
    const mul = onlyReader(clip.output[0]!);
    if (mul?.opType !== "Mul" || mul.input.length !== 2 || !mul.input.includes(x) || !mul.input.includes(clip.output[0]!)) continue;
    const last = onlyReader(mul.output[0]!);
    if (!last) continue;
    const divided = last.opType === "Div" && last.input[0] === mul.output[0] && scalar(last.input[1]) === 6;
    const scaled = last.opType === "Mul" && withConstant(last, (v) => Math.fround(v) === Math.fround(SIXTH)) === mul.output[0];
    if (!divided && !scaled) continue;
    const gate = uniqueName(g, `${add.name || x}_hardsigmoid`, taken);
    replace.set(last, [
      makeNode("HardSigmoid", [x], [gate], { name: gate, attributes: [attr.float("alpha", SIXTH), attr.float("beta", 0.5)] }),
      makeNode("Mul", [x, gate], [last.output[0]!], { name: uniqueName(g, `${mul.name || x}_hardswish`, taken) }),
    ]);
    for (const n of [add, clip, mul]) drop.add(n);
  }
  if (!replace.size) return { rewritten: 0, constants: [] };
  g.node = g.node.flatMap((n) => replace.get(n) ?? (drop.has(n) ? [] : [n]));
  const constants = [...drop, ...replace.keys()].flatMap((n) => n.input).filter((i) => inits.has(i));
  return { rewritten: replace.size, constants };
}
