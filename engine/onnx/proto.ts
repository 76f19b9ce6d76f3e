// Builders and readers for the small ONNX messages: nodes, attributes, value infos, graphs, models. The message
// types themselves come from onnx-buf (ONNX 1.20 schema, lossless round trip) and are re-exported from index.ts.
import { create } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType as AttrType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "onnx-buf";
import type { DataType } from "./dtype";
import { OnnxError } from "./errors";

/** Attribute constructors: ONNX distinguishes int from float, which a JS number cannot, so the kind is explicit. */
export const attr = {
  int: (name: string, i: number | bigint): AttributeProto =>
    create(AttributeProtoSchema, { name, type: AttrType.INT, i: BigInt(i) }),
  float: (name: string, f: number): AttributeProto => create(AttributeProtoSchema, { name, type: AttrType.FLOAT, f }),
  string: (name: string, s: string): AttributeProto =>
    create(AttributeProtoSchema, { name, type: AttrType.STRING, s: new TextEncoder().encode(s) }),
  ints: (name: string, ints: readonly (number | bigint)[]): AttributeProto =>
    create(AttributeProtoSchema, { name, type: AttrType.INTS, ints: ints.map((v) => BigInt(v)) }),
  floats: (name: string, floats: readonly number[]): AttributeProto =>
    create(AttributeProtoSchema, { name, type: AttrType.FLOATS, floats: [...floats] }),
  strings: (name: string, strings: readonly string[]): AttributeProto =>
    create(AttributeProtoSchema, {
      name,
      type: AttrType.STRINGS,
      strings: strings.map((s) => new TextEncoder().encode(s)),
    }),
  tensor: (name: string, t: TensorProto): AttributeProto => create(AttributeProtoSchema, { name, type: AttrType.TENSOR, t }),
  graph: (name: string, g: GraphProto): AttributeProto => create(AttributeProtoSchema, { name, type: AttrType.GRAPH, g }),
};

export interface MakeNodeOptions {
  name?: string;
  domain?: string;
  attributes?: AttributeProto[];
  docString?: string;
}

export function makeNode(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  options: MakeNodeOptions = {},
): NodeProto {
  return create(NodeProtoSchema, {
    opType,
    input: [...inputs],
    output: [...outputs],
    name: options.name ?? "",
    domain: options.domain ?? "",
    attribute: options.attributes ?? [],
    docString: options.docString ?? "",
  });
}

/** A dimension: a number is fixed, a string is symbolic ("batch"), null is unknown. */
export type Dim = number | string | null;

/** A tensor value info; `shape` undefined means rank unknown. */
export function makeValueInfo(name: string, elemType: DataType, shape?: readonly Dim[]): ValueInfoProto {
  const tensorType = create(TypeProto_TensorSchema, { elemType });
  if (shape) {
    tensorType.shape = create(TensorShapeProtoSchema, {
      dim: shape.map((d) =>
        create(TensorShapeProto_DimensionSchema, {
          value:
            d === null
              ? { case: undefined }
              : typeof d === "number"
                ? { case: "dimValue", value: BigInt(d) }
                : { case: "dimParam", value: d },
        }),
      ),
    });
  }
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, { value: { case: "tensorType", value: tensorType } }),
  });
}

/** A declared shape with its negative dimensions (exporters write -1 for "any", paddle2onnx's batch) as unknown, as
 *  onnxruntime reads them. */
export const negativeDimsUnknown = (shape: readonly Dim[]): Dim[] => shape.map((d) => (typeof d === "number" && d < 0 ? null : d));

/** Element type and shape of a tensor value info, or undefined for non-tensor values. */
export function valueInfoTensor(v: ValueInfoProto): { elemType: DataType; shape: Dim[] | undefined } | undefined {
  if (v.type?.value.case !== "tensorType") return undefined;
  const tt = v.type.value.value;
  const shape = tt.shape?.dim.map((d): Dim =>
    d.value.case === "dimValue" ? Number(d.value.value) : d.value.case === "dimParam" ? d.value.value : null,
  );
  return { elemType: tt.elemType, shape };
}

/**
 * Whether a graph output holds one value per sample (declared [N] or [N, 1, …]: a wake-word or voice probability),
 * where a per-sample cosine is only the value's sign and an argmax always 0.
 */
export function oneValuePerSample(v: ValueInfoProto | undefined): boolean {
  const shape = v ? valueInfoTensor(v)?.shape : undefined;
  return shape !== undefined && shape.length >= 1 && shape.slice(1).every((d) => d === 1);
}

export interface MakeGraphOptions {
  initializers?: TensorProto[];
  valueInfo?: ValueInfoProto[];
  docString?: string;
}

export function makeGraph(
  name: string,
  nodes: NodeProto[],
  inputs: ValueInfoProto[],
  outputs: ValueInfoProto[],
  options: MakeGraphOptions = {},
): GraphProto {
  return create(GraphProtoSchema, {
    name,
    node: nodes,
    input: inputs,
    output: outputs,
    initializer: options.initializers ?? [],
    valueInfo: options.valueInfo ?? [],
    docString: options.docString ?? "",
  });
}

/** The IR version that goes with an ai.onnx opset (from onnx/helper.py VERSION_TABLE). */
export function irVersionForOpset(opset: number): number {
  const table: [number, number][] = [
    [8, 3], [9, 4], [10, 5], [11, 6], [14, 7], [18, 8], [20, 9], [22, 10], [25, 11],
  ];
  for (const [maxOpset, ir] of table) if (opset <= maxOpset) return ir;
  return 11;
}

export interface MakeModelOptions {
  /** Opset per domain; "" is ai.onnx. Default { "": 13 }. */
  opsets?: Record<string, number>;
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
}

export function makeModel(graph: GraphProto, options: MakeModelOptions = {}): ModelProto {
  const opsets = options.opsets ?? { "": 13 };
  const main = opsets[""] ?? 13;
  return create(ModelProtoSchema, {
    irVersion: BigInt(options.irVersion ?? irVersionForOpset(main)),
    opsetImport: Object.entries(opsets).map(([domain, version]) =>
      create(OperatorSetIdProtoSchema, { domain, version: BigInt(version) }),
    ),
    producerName: options.producerName ?? "ptq-studio",
    producerVersion: options.producerVersion ?? "0.1.0",
    graph,
  });
}

// ---- attribute readers -------------------------------------------------------------------------------------

export function getAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

const nodeLabel = (n: NodeProto) => `node "${n.name || n.output[0] || "?"}" (${n.opType})`;

function expect(node: NodeProto, a: AttributeProto, type: AttrType, kind: string): void {
  // Old exporters leave `type` unset (0); accept that and read the field the caller asked for.
  if (a.type !== type && a.type !== AttrType.UNDEFINED) {
    throw new OnnxError(`${nodeLabel(node)}: attribute "${a.name}" should be ${kind}, found type ${AttrType[a.type]}`);
  }
}

export function attrInt(node: NodeProto, name: string): number | undefined;
export function attrInt(node: NodeProto, name: string, fallback: number): number;
export function attrInt(node: NodeProto, name: string, fallback?: number): number | undefined {
  const a = getAttribute(node, name);
  if (!a) return fallback;
  expect(node, a, AttrType.INT, "an int");
  return Number(a.i);
}

export function attrFloat(node: NodeProto, name: string): number | undefined;
export function attrFloat(node: NodeProto, name: string, fallback: number): number;
export function attrFloat(node: NodeProto, name: string, fallback?: number): number | undefined {
  const a = getAttribute(node, name);
  if (!a) return fallback;
  expect(node, a, AttrType.FLOAT, "a float");
  return a.f;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = getAttribute(node, name);
  if (!a) return undefined;
  expect(node, a, AttrType.INTS, "a list of ints");
  return a.ints.map(Number);
}

export function attrFloats(node: NodeProto, name: string): number[] | undefined {
  const a = getAttribute(node, name);
  if (!a) return undefined;
  expect(node, a, AttrType.FLOATS, "a list of floats");
  return [...a.floats];
}

export function attrString(node: NodeProto, name: string): string | undefined {
  const a = getAttribute(node, name);
  if (!a) return undefined;
  expect(node, a, AttrType.STRING, "a string");
  return new TextDecoder().decode(a.s);
}

/** Sets (replacing any existing) or, with `undefined`, removes an attribute. */
export function setAttribute(node: NodeProto, a: AttributeProto | undefined, name = a?.name): void {
  node.attribute = node.attribute.filter((x) => x.name !== name);
  if (a) node.attribute.push(a);
}

export { AttrType };
