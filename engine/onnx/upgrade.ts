// Opset upgrade (ai.onnx domain): rewrites ops whose signature changed between the model's opset and the target,
// from opset 7 up to 25. Attributes that moved to inputs become int64/float initializers; Upsample becomes Resize;
// Softmax-family semantics (flatten at `axis` before 13) are preserved with Flatten/Reshape when the rank is unknown.
// Subgraphs (If/Loop/Scan bodies) are upgraded too. Ops that cannot be converted faithfully are refused by name.
import type { GraphProto, NodeProto } from "onnx-buf";
import { DataType } from "./dtype";
import { OnnxError } from "./errors";
import { nodeLabel, subgraphs, usedNames, uniqueName } from "./graph";
import type { Model } from "./model";
import { attr, attrFloat, attrFloats, attrInt, attrInts, attrString, irVersionForOpset, makeNode, setAttribute, valueInfoTensor } from "./proto";
import { makeTensor } from "./tensor";

/** What a converter may use: the graph being rewritten and a way to add constant inputs. */
interface Ctx {
  graph: GraphProto;
  name(base: string): string;
  /** Adds an initializer and returns its (unique) name. */
  constant(base: string, dtype: DataType, dims: number[], values: readonly (number | bigint)[]): string;
  /** Rank of a value when the graph declares it (inputs, value_info, outputs). */
  rank(value: string): number | undefined;
  /** Element type of a value when the graph declares it. */
  elemType(value: string): DataType | undefined;
}

/** Rewrites one node for the opset version `since`; returns the nodes that replace it. */
type Converter = (node: NodeProto, ctx: Ctx) => NodeProto[];

/** Moves an int-list attribute to an int64 input at position `index` (missing attr → empty optional input). */
function intsToInput(node: NodeProto, ctx: Ctx, attrName: string, index: number): void {
  const v = attrInts(node, attrName);
  setAttribute(node, undefined, attrName);
  while (node.input.length < index) node.input.push("");
  const name = v === undefined ? "" : ctx.constant(`${node.name || node.output[0]}_${attrName}`, DataType.INT64, [v.length], v.map(BigInt));
  node.input.splice(index, 0, name);
  while (node.input.length && node.input[node.input.length - 1] === "") node.input.pop();
}

/** The float type to use for a scalar that must match `value`'s type (float when unknown). */
function floatTypeOf(ctx: Ctx, value: string): DataType {
  const t = ctx.elemType(value);
  return t === DataType.DOUBLE || t === DataType.FLOAT16 ? t : DataType.FLOAT;
}

const softmaxTo13: Converter = (node, ctx) => {
  const axis = attrInt(node, "axis", 1);
  const rank = ctx.rank(node.input[0]!);
  if (axis === -1 || (rank !== undefined && (axis === rank - 1 || axis - rank === -1))) {
    setAttribute(node, attr.int("axis", -1));
    return [node];
  }
  // Before 13, Softmax flattened the input to 2-D at `axis`; keep that meaning explicitly.
  const base = node.name || node.output[0]!;
  const flat = ctx.name(`${base}_flat`);
  const soft = ctx.name(`${base}_2d`);
  const shape = ctx.name(`${base}_shape`);
  return [
    makeNode("Shape", [node.input[0]!], [shape], { name: ctx.name(`${base}_shape_op`) }),
    makeNode("Flatten", [node.input[0]!], [flat], { name: ctx.name(`${base}_flatten`), attributes: [attr.int("axis", axis)] }),
    makeNode(node.opType, [flat], [soft], { name: node.name, attributes: [attr.int("axis", -1)] }),
    makeNode("Reshape", [soft, shape], [node.output[0]!], { name: ctx.name(`${base}_reshape`) }),
  ];
};

/** Resize attributes that reproduce Upsample / Resize-10 (asymmetric coordinates, floor for nearest). */
function resize11Attributes(node: NodeProto, mode: string): void {
  setAttribute(node, attr.string("mode", mode));
  setAttribute(node, attr.string("coordinate_transformation_mode", "asymmetric"));
  if (mode === "nearest") setAttribute(node, attr.string("nearest_mode", "floor"));
}

/** Converters by op type, each for the version where the op's signature changed. */
const CONVERTERS: Record<string, { since: number; convert: Converter }[]> = {
  BatchNormalization: [
    {
      since: 9,
      convert: (n) => {
        if (attrInt(n, "spatial", 1) !== 1) throw new OnnxError(`${nodeLabel(n)}: spatial=0 BatchNormalization has no equivalent after opset 8`);
        setAttribute(n, undefined, "spatial");
        return [n];
      },
    },
  ],
  Upsample: [
    {
      since: 9,
      convert: (n, ctx) => {
        const scales = attrFloats(n, "scales");
        if (scales) {
          setAttribute(n, undefined, "scales");
          n.input[1] = ctx.constant(`${n.name || n.output[0]}_scales`, DataType.FLOAT, [scales.length], scales);
        }
        return [n];
      },
    },
    {
      since: 10,
      convert: (n) => {
        n.opType = "Resize";
        return [n];
      },
    },
  ],
  Resize: [
    {
      since: 11,
      convert: (n) => {
        const mode = attrString(n, "mode") ?? "nearest";
        n.input = [n.input[0]!, "", n.input[1]!];
        resize11Attributes(n, mode);
        return [n];
      },
    },
  ],
  Slice: [
    {
      since: 10,
      convert: (n, ctx) => {
        const starts = attrInts(n, "starts");
        const ends = attrInts(n, "ends");
        if (!starts || !ends) throw new OnnxError(`${nodeLabel(n)}: Slice needs starts and ends`);
        const axes = attrInts(n, "axes");
        for (const a of ["starts", "ends", "axes"]) setAttribute(n, undefined, a);
        const base = n.name || n.output[0]!;
        n.input = [
          n.input[0]!,
          ctx.constant(`${base}_starts`, DataType.INT64, [starts.length], starts.map(BigInt)),
          ctx.constant(`${base}_ends`, DataType.INT64, [ends.length], ends.map(BigInt)),
          ...(axes ? [ctx.constant(`${base}_axes`, DataType.INT64, [axes.length], axes.map(BigInt))] : []),
        ];
        return [n];
      },
    },
  ],
  TopK: [
    {
      since: 10,
      convert: (n, ctx) => {
        const k = attrInt(n, "k");
        if (k === undefined) throw new OnnxError(`${nodeLabel(n)}: TopK needs k`);
        setAttribute(n, undefined, "k");
        n.input = [n.input[0]!, ctx.constant(`${n.name || n.output[0]}_k`, DataType.INT64, [1], [BigInt(k)])];
        return [n];
      },
    },
  ],
  Clip: [
    {
      since: 11,
      convert: (n, ctx) => {
        const min = attrFloat(n, "min");
        const max = attrFloat(n, "max");
        setAttribute(n, undefined, "min");
        setAttribute(n, undefined, "max");
        const t = floatTypeOf(ctx, n.input[0]!);
        const base = n.name || n.output[0]!;
        n.input = [
          n.input[0]!,
          min === undefined ? "" : ctx.constant(`${base}_min`, t, [], [min]),
          max === undefined ? "" : ctx.constant(`${base}_max`, t, [], [max]),
        ];
        while (n.input[n.input.length - 1] === "") n.input.pop();
        return [n];
      },
    },
  ],
  Pad: [
    {
      since: 11,
      convert: (n, ctx) => {
        const pads = attrInts(n, "pads") ?? attrInts(n, "paddings");
        if (!pads) throw new OnnxError(`${nodeLabel(n)}: Pad needs pads`);
        const value = attrFloat(n, "value", 0);
        setAttribute(n, undefined, "pads");
        setAttribute(n, undefined, "paddings");
        setAttribute(n, undefined, "value");
        const base = n.name || n.output[0]!;
        n.input = [n.input[0]!, ctx.constant(`${base}_pads`, DataType.INT64, [pads.length], pads.map(BigInt))];
        if (value !== 0) n.input.push(ctx.constant(`${base}_value`, floatTypeOf(ctx, n.input[0]!), [], [value]));
        return [n];
      },
    },
  ],
  Dropout: [
    {
      since: 12,
      convert: (n, ctx) => {
        const ratio = attrFloat(n, "ratio");
        setAttribute(n, undefined, "ratio");
        if (ratio !== undefined) n.input = [n.input[0]!, ctx.constant(`${n.name || n.output[0]}_ratio`, DataType.FLOAT, [], [ratio])];
        return [n];
      },
    },
  ],
  Split: [
    { since: 13, convert: (n, ctx) => (intsToInput(n, ctx, "split", 1), [n]) },
    {
      // From 18 an equal split must say into how many parts.
      since: 18,
      convert: (n) => {
        if (!n.input[1]) setAttribute(n, attr.int("num_outputs", n.output.length));
        return [n];
      },
    },
  ],
  Squeeze: [{ since: 13, convert: (n, ctx) => (intsToInput(n, ctx, "axes", 1), [n]) }],
  Unsqueeze: [{ since: 13, convert: (n, ctx) => (intsToInput(n, ctx, "axes", 1), [n]) }],
  ReduceSum: [{ since: 13, convert: (n, ctx) => (intsToInput(n, ctx, "axes", 1), [n]) }],
  Softmax: [{ since: 13, convert: softmaxTo13 }],
  LogSoftmax: [{ since: 13, convert: softmaxTo13 }],
  Hardmax: [{ since: 13, convert: softmaxTo13 }],
  Scan: [
    {
      since: 9,
      convert: (n) => {
        throw new OnnxError(`${nodeLabel(n)}: Scan-8 (with a batch axis) cannot be upgraded automatically; re-export the model at opset 9 or later`);
      },
    },
  ],
  GroupNormalization: [
    {
      since: 21,
      convert: (n) => {
        throw new OnnxError(`${nodeLabel(n)}: GroupNormalization-18 scale/bias are per group, -21 per channel; re-export at opset 21`);
      },
    },
  ],
};
for (const op of ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]) {
  CONVERTERS[op] = [{ since: 18, convert: (n, ctx) => (intsToInput(n, ctx, "axes", 1), [n]) }];
}

/** The highest ai.onnx opset this upgrader knows the changes up to. */
export const MAX_UPGRADE_OPSET = 25;

function upgradeGraph(graph: GraphProto, from: number, to: number, taken: Set<string>): void {
  const declared = new Map<string, { elemType: DataType; rank: number | undefined }>();
  for (const v of [...graph.input, ...graph.valueInfo, ...graph.output]) {
    const t = valueInfoTensor(v);
    if (t) declared.set(v.name, { elemType: t.elemType, rank: t.shape?.length });
  }
  for (const t of graph.initializer) declared.set(t.name, { elemType: t.dataType, rank: t.dims.length });
  const ctx: Ctx = {
    graph,
    name: (base) => uniqueName(graph, base, taken),
    constant: (base, dtype, dims, values) => {
      const name = uniqueName(graph, base, taken);
      graph.initializer.push(makeTensor(name, dtype, dims, values as number[]));
      return name;
    },
    rank: (v) => declared.get(v)?.rank,
    elemType: (v) => declared.get(v)?.elemType,
  };
  const out: NodeProto[] = [];
  for (const node of graph.node) {
    for (const g of subgraphs(node)) upgradeGraph(g, from, to, taken);
    let nodes = [node];
    if (node.domain === "" || node.domain === "ai.onnx") {
      // Version by version, so an op renamed on the way (Upsample → Resize) gets the new op's later changes too.
      for (let v = from + 1; v <= to; v++) {
        nodes = nodes.flatMap((n) => {
          const step = CONVERTERS[n.opType]?.find((s) => s.since === v);
          return step ? step.convert(n, ctx) : [n];
        });
      }
    }
    out.push(...nodes);
  }
  graph.node = out;
}

/**
 * Upgrades the model's ai.onnx opset to `target` in place (clone first to keep the original). Downgrades are
 * refused. Sets the IR version to at least what the target opset needs.
 */
export function upgradeOpset(model: Model, target: number): void {
  const from = model.opset("");
  if (from === undefined) throw new OnnxError("the model does not import the ai.onnx opset", model.path);
  if (target < from) throw new OnnxError(`cannot downgrade from opset ${from} to ${target}`, model.path);
  if (target > MAX_UPGRADE_OPSET) throw new OnnxError(`opset ${target} is newer than this upgrader knows (max ${MAX_UPGRADE_OPSET})`, model.path);
  if (from < 7) throw new OnnxError(`opset ${from} is older than 7, the oldest this upgrader handles`, model.path);
  if (target === from) return;
  try {
    upgradeGraph(model.graph, from, target, usedNames(model.graph));
  } catch (e) {
    if (e instanceof OnnxError && model.path) throw new OnnxError(e.message, model.path);
    throw e;
  }
  model.setOpset(target);
  const ir = irVersionForOpset(target);
  if (Number(model.proto.irVersion) < ir) model.proto.irVersion = BigInt(ir);
}
