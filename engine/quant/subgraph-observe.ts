// Observing tensors computed inside If/Loop/Scan bodies. onnxruntime returns main-graph values only, so a
// calibration copy threads each body tensor out: it becomes an extra output of its body and of the node that holds
// the body, level by level up to the main graph, where the calibrator can fetch it like any other value.
//   If: every branch needs the extra output with the same element type; the branches that do not compute the
//       tensor give an empty float32 tensor ([0]): an observer must skip empty observations (the branch not taken).
//   Loop / Scan: the extra output is a scan output, the tensor stacked over iterations: all of its values, which is
//       what a range or a histogram needs.
// Values are cast to float32 inside the body where their type is not float32 (known or inferred).
import type { GraphProto, NodeProto } from "onnx-buf";
import { DataType } from "../onnx/dtype";
import { subgraphs, uniqueName, usedNames } from "../onnx/graph";
import type { Model } from "../onnx/model";
import { attr, makeNode, makeValueInfo } from "../onnx/proto";
import { makeTensor } from "../onnx/tensor";
import { inferElemTypes } from "./graph";

/** A path from the main graph to the body defining a tensor: each step is a node and which of its bodies. */
type Step = { node: NodeProto; body: GraphProto };

function definedIn(g: GraphProto, name: string): boolean {
  return g.input.some((v) => v.name === name) || g.node.some((n) => n.output.includes(name));
}

function findPath(g: GraphProto, name: string): Step[] | undefined {
  for (const node of g.node) {
    for (const body of subgraphs(node)) {
      if (definedIn(body, name)) return [{ node, body }];
      const deeper = findPath(body, name);
      if (deeper) return [{ node, body }, ...deeper];
    }
  }
  return undefined;
}

/** Whether `name` is computed (or taken as input) inside some If/Loop/Scan body of `graph`, at any depth. */
export function definedInBody(graph: GraphProto, name: string): boolean {
  return findPath(graph, name) !== undefined;
}

/**
 * Which of `tensors` (located by locateTensors) live only inside If/Loop/Scan bodies: the ones it finds there, and
 * those it does not find that a body takes as input (a Loop's carried state is a body input, not a node output).
 */
export function bodyTensors(graph: GraphProto, located: { inSubgraph: readonly string[]; unknown: readonly string[] }): string[] {
  return [...located.inSubgraph, ...located.unknown.filter((t) => definedInBody(graph, t))];
}

/**
 * A copy of `model` in which every tensor of `tensors` computed inside a body is also a main-graph value; `outputs`
 * maps each such tensor to that value's name (float32). Tensors of the main graph are left out of the map; a name
 * found nowhere is an error naming it.
 */
export function exposeBodyTensors(model: Model, tensors: readonly string[]): { model: Model; outputs: Map<string, string> } {
  const copy = model.cloneSharingInitializers(); // adds nodes, outputs and initializers only
  const main = copy.graph;
  const taken = usedNames(main);
  const fresh = (base: string) => uniqueName(main, base, taken);
  const outputs = new Map<string, string>();
  for (const t of tensors) {
    if (definedIn(main, t) || main.initializer.some((i) => i.name === t)) continue;
    const path = findPath(main, t);
    if (!path) throw new Error(`no tensor named "${t}" in ${model.path ?? "the model"} or its If/Loop/Scan bodies; check the name`);
    // Element types along the path, so a non-float value is cast once, where it is computed.
    let types = inferElemTypes(main);
    for (const s of path) types = inferElemTypes(s.body, types);
    let value = t;
    const inner = path[path.length - 1]!.body;
    if (types.get(t) !== DataType.FLOAT) {
      value = fresh(`${t}__observed_f32`);
      inner.node.push(makeNode("Cast", [t], [value], { name: fresh(`${t}__observed_cast`), attributes: [attr.int("to", DataType.FLOAT)] }));
    } else if (inner.input.some((v) => v.name === t) || inner.output.some((v) => v.name === t)) {
      // A body input (a Loop's carried state) or an existing output: a copy, so no name is listed twice.
      value = fresh(`${t}__observed_copy`);
      inner.node.push(makeNode("Identity", [t], [value], { name: fresh(`${t}__observed_Identity`) }));
    }
    for (let level = path.length - 1; level >= 0; level--) {
      const { node, body } = path[level]!;
      const out = fresh(`${t}__observed`);
      threadOut(node, body, value, out, fresh);
      value = out;
    }
    outputs.set(t, value);
  }
  return { model: copy, outputs };
}

/** Makes `value` (computed in `body`) an output of `node` named `out`. */
function threadOut(node: NodeProto, body: GraphProto, value: string, out: string, fresh: (base: string) => string): void {
  if (node.opType === "If") {
    for (const branch of subgraphs(node)) {
      if (branch === body) {
        branch.output.push(makeValueInfo(value, DataType.FLOAT));
        continue;
      }
      const empty = fresh(`${out}_empty`);
      branch.node.push(makeNode("Constant", [], [empty], { name: fresh(`${out}_empty_Constant`), attributes: [attr.tensor("value", makeTensor(empty, DataType.FLOAT, [0], []))] }));
      branch.output.push(makeValueInfo(empty, DataType.FLOAT));
    }
  } else if (node.opType === "Loop" || node.opType === "Scan") {
    body.output.push(makeValueInfo(value, DataType.FLOAT));
    // Scan lists an axis and a direction per scan output when it lists them at all: the new one is stacked on axis 0.
    for (const a of node.attribute) if ((a.name === "scan_output_axes" || a.name === "scan_output_directions") && a.ints.length) a.ints.push(0n);
  } else {
    throw new Error(`node "${node.name}" (${node.domain ? `${node.domain}.` : ""}${node.opType}) holds a subgraph that cannot be observed (only If, Loop and Scan)`);
  }
  node.output.push(out);
}
