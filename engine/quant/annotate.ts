// The annotation step: every op quantizer only MARKS what to quantize through this context; the QDQ pass
// (qdq.ts) later rewrites the graph once from these marks (ORT's design: operators/*.py mark, qdq_quantizer.py
// rewrites). Marks are plain data so prepare() can list the tensors calibration must observe.
import type { GraphProto, NodeProto, TensorProto } from "onnx-buf";
import { consumers as consumerMap, producers as producerMap } from "../onnx/graph";
import { tensorToFloat32 } from "../onnx/tensor";
import { inferElemTypes, isFloat32 } from "./graph";
import type { ResolvedQConfig } from "./types";

export interface ActivationMark {
  /** Use the parameters of this tensor (ops that only move data: Reshape, Transpose, MaxPool, ...). */
  sameAs?: string;
  /** A fixed range (Softmax output: [0, 1]). */
  fixedRange?: { min: number; max: number };
}

export interface WeightMark {
  /** Per-channel axis; undefined = per-tensor. */
  axis: number | undefined;
}

export interface BiasMark {
  bias: string;
  input: string;
  weight: string;
  node: string;
}

/** A Relu/Clip that may be removed because the Q of its producer's output clamps the same way. */
export interface FoldMark {
  node: NodeProto;
  /** The producer's output the activation reads. */
  input: string;
  output: string;
  /** Whether the producer's output was quantized anyway (a Conv's, an Add's): the fold then replaces its Q with a
   *  finer one. A Gemm/MatMul marks no output Q of its own; folding its Relu adds the Q that the Relu's own
   *  quantization would (and takes away the one on the producer's output). */
  replacesQ: boolean;
}

export class Annotations {
  readonly activations = new Map<string, ActivationMark>();
  readonly weights = new Map<string, WeightMark>();
  readonly biases: BiasMark[] = [];
  readonly folds: FoldMark[] = [];
  /** Node name → the tensors it asked for (for the summary). */
  readonly nodes = new Map<NodeProto, string[]>();
  readonly float: { node: NodeProto; reason: string }[] = [];

  /**
   * Activations calibration must observe: every marked non-constant one. Fixed-range tensors (Softmax output) are
   * observed too, in case their producer is excluded later. Tensors that share another
   * tensor's parameters (sameAs) are observed too: when the tensor they share with stays float (excluded by the
   * user or by the mixed-precision search), they need a range of their own, and re-calibrating for every such
   * variant would cost far more than a few extra reductions now.
   */
  observed(isConstant: (name: string) => boolean): string[] {
    return [...this.activations.keys()].filter((n) => !isConstant(n));
  }
}

/** What an op quantizer sees. */
export class QuantizerContext {
  readonly types: Map<string, number>;
  readonly initializers: Map<string, TensorProto>;
  private readonly consumers: Map<string, NodeProto[]>;
  private readonly producers: Map<string, NodeProto>;
  private readonly graphOutputs: Set<string>;
  private current: string[] = [];
  /** finiteConstant's answers by initializer name. */
  private readonly finite = new Map<string, boolean>();

  constructor(
    readonly graph: GraphProto,
    readonly config: ResolvedQConfig,
    readonly marks: Annotations,
  ) {
    this.types = inferElemTypes(graph);
    this.initializers = new Map(graph.initializer.map((t) => [t.name, t]));
    this.consumers = consumerMap(graph);
    this.producers = producerMap(graph);
    this.graphOutputs = new Set(graph.output.map((o) => o.name));
  }

  begin(): void {
    this.current = [];
  }
  end(): string[] {
    return this.current;
  }

  isFloat(name: string): boolean {
    return name !== "" && isFloat32(this.types, name);
  }
  isConstant(name: string): boolean {
    return this.initializers.has(name);
  }
  isGraphOutput(name: string): boolean {
    return this.graphOutputs.has(name);
  }
  consumersOf(name: string): NodeProto[] {
    return this.consumers.get(name) ?? [];
  }
  producerOf(name: string): NodeProto | undefined {
    return this.producers.get(name);
  }
  dims(name: string): number[] | undefined {
    const t = this.initializers.get(name);
    return t ? t.dims.map(Number) : undefined;
  }

  /** Quantize a float activation (or a float constant used like one, e.g. the scalar of an Add). */
  activation(name: string, mark: ActivationMark = {}): boolean {
    if (!this.isFloat(name) || this.config.overrides[name]?.keepFloat) return false;
    // A constant holding -inf/NaN (attention masks) has no scale; it stays float.
    if (this.isConstant(name) && !this.finiteConstant(name)) return false;
    const prev = this.marks.activations.get(name);
    // A shared-parameter or fixed-range mark wins over a plain one: it is what lets onnxruntime drop the Q/DQ pair.
    if (!prev || mark.sameAs || mark.fixedRange) this.marks.activations.set(name, { ...prev, ...mark });
    this.current.push(name);
    return true;
  }

  /** Whether a constant holds only finite values; asked up to four times per weight, so decoded once. */
  private finiteConstant(name: string): boolean {
    let finite = this.finite.get(name);
    if (finite === undefined) {
      try {
        finite = tensorToFloat32(this.initializers.get(name)!).every((v) => Number.isFinite(v));
      } catch {
        finite = false; // external data we cannot read here: leave it alone
      }
      this.finite.set(name, finite);
    }
    return finite;
  }

  /** Whether weight() would accept this tensor (lets a quantizer decline before marking anything). */
  canQuantizeWeight(name: string): boolean {
    return this.isConstant(name) && this.isFloat(name) && !this.config.overrides[name]?.keepFloat && this.finiteConstant(name);
  }

  /** Quantize a constant weight, per-channel along `axis` when the config asks for per-channel. */
  weight(name: string, axis: number | undefined): boolean {
    if (!this.canQuantizeWeight(name)) return false;
    if (!this.marks.weights.has(name)) this.marks.weights.set(name, { axis: this.config.perChannel ? axis : undefined });
    this.current.push(name);
    return true;
  }

  bias(name: string, input: string, weight: string, node: NodeProto): boolean {
    if (!this.isConstant(name) || !this.isFloat(name) || !this.marks.weights.has(weight)) return false;
    this.marks.biases.push({ bias: name, input, weight, node: node.name });
    this.current.push(name);
    return true;
  }

  fold(node: NodeProto, input: string, output: string): void {
    this.marks.folds.push({ node, input, output, replacesQ: this.marks.activations.has(input) });
  }
}
