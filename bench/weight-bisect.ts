// Which layer's weights make two quantized files of one corpus model read differently? Two files written from the
// same model with the same activation ranges (two weight grids, two roundings, a recovery step on or off) differ only
// in their weight and bias initializers. This takes B's weights into A one weighted node group at a time, halving the
// set each round and following the half that moves A's score further, and scores every candidate with the corpus's
// own metric on its held-out samples (a recogniser's lines read exactly, otherwise the worst output's SQNR).
//   node --import tsx bench/weight-bisect.ts --model ID --base A.onnx --other B.onnx [--count N] [--keep DIR]
// Prints A's and B's scores, then each round's two halves (their nodes and scores), and the node it ends on with
// what it alone moves. An effect that needs nodes from both halves shows as neither half reproducing B: both are
// printed, and the round goes on with the larger move. docs/quantization.md "One 1×1 Conv decides v4's lines".
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { initializerMap, producers } from "../engine/onnx/graph";
import { Model } from "../engine/onnx/model";
import type { NodeProto, TensorProto } from "onnx-buf";
import { evaluator, type EvalResult } from "./corpus/evaluate";

/** Ops whose weights a quantized file holds behind a decode (DequantizeLinear, or Cast → Sub → Mul once decoded). */
const WEIGHTED = new Set(["Conv", "ConvTranspose", "MatMul", "Gemm"]);
/** Ops between an initializer and the weighted node's weight or bias input. */
const DECODE = new Set(["DequantizeLinear", "Cast", "Sub", "Mul", "Reshape", "Unsqueeze"]);

export interface WeightGroup {
  /** The weighted node. */
  node: string;
  opType: string;
  /** Initializers behind its weight and bias inputs that differ between the two files. */
  initializers: string[];
}

const signature = (n: NodeProto) => `${n.opType}(${n.input.join(",")})->${n.output.join(",")}`;

function sameValues(a: Model, t: TensorProto, b: Model, u: TensorProto): boolean {
  if (t.dataType !== u.dataType || t.dims.join(",") !== u.dims.join(",")) return false;
  const [x, y] = [a.readTensor(t).data, b.readTensor(u).data];
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * The weighted nodes of `a` (graph order) whose weight or bias initializers differ in `b`. The two graphs must have
 * the same nodes and initializer names: the error names the first node or initializer that differs.
 */
export function weightGroups(a: Model, b: Model): WeightGroup[] {
  const [na, nb] = [a.graph.node.map(signature), b.graph.node.map(signature)];
  const first = na.findIndex((s, i) => s !== nb[i]);
  if (first >= 0 || na.length !== nb.length) {
    const i = first >= 0 ? first : Math.min(na.length, nb.length);
    throw new Error(`the two files' graphs differ at node ${i} (${na[i] ?? "none"} against ${nb[i] ?? "none"}): only weights may differ; write both from the same model and config`);
  }
  const inB = initializerMap(b.graph);
  const missing = a.graph.initializer.find((t) => !inB.has(t.name));
  if (missing || a.graph.initializer.length !== b.graph.initializer.length) {
    throw new Error(`the two files' initializers differ (${missing ? `"${missing.name}" is only in the first` : "different counts"}): only their values may differ`);
  }
  const inits = initializerMap(a.graph);
  const producer = producers(a.graph);
  const groups: WeightGroup[] = [];
  for (const n of a.graph.node) {
    if (!WEIGHTED.has(n.opType)) continue;
    const found = new Set<string>();
    const walk = (name: string, depth: number) => {
      if (inits.has(name)) return void found.add(name);
      const p = producer.get(name);
      if (p && depth < 6 && DECODE.has(p.opType)) for (const i of p.input) if (i) walk(i, depth + 1);
    };
    n.input.slice(1).forEach((i) => i && walk(i, 0));
    const differing = [...found].filter((name) => !sameValues(a, inits.get(name)!, b, inB.get(name)!));
    if (differing.length) groups.push({ node: n.name, opType: n.opType, initializers: differing });
  }
  return groups;
}

/** `a` with the initializers of `groups` taken from `b` (a new model; `a` is not changed). */
export function withWeightsOf(a: Model, b: Model, groups: readonly WeightGroup[]): Model {
  const take = new Set(groups.flatMap((g) => g.initializers));
  const inB = initializerMap(b.graph);
  const m = a.clone();
  m.graph.initializer = m.graph.initializer.map((t) => (take.has(t.name) ? inB.get(t.name)! : t));
  return m;
}

/** The corpus's score of a file: lines read exactly (%) for a recogniser, otherwise the worst output's SQNR (dB). */
function score(r: EvalResult): number {
  if (!r.ok) throw new Error(`onnxruntime could not run a candidate: ${r.reason}`);
  return r.lines ? 100 * r.lines.exact : r.sqnrDb!;
}

const unit = (v: number) => v.toFixed(2);
const names = (gs: readonly WeightGroup[]) => (gs.length <= 4 ? gs.map((g) => g.node).join(", ") : `${gs[0]!.node} … ${gs.at(-1)!.node} (${gs.length} nodes)`);

async function main(argv: string[]): Promise<void> {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const [id, base, other] = [get("--model"), get("--base"), get("--other")];
  if (!id || !base || !other) throw new Error("usage: weight-bisect.ts --model ID --base A.onnx --other B.onnx [--count N] [--keep DIR]");
  const count = get("--count") === undefined ? undefined : Number(get("--count"));
  const keep = get("--keep");
  const dir = keep ?? mkdtempSync(path.join(os.tmpdir(), "ptq-weight-bisect-"));
  try {
    const [a, b] = await Promise.all([Model.load(base), Model.load(other)]);
    let set = weightGroups(a, b);
    if (set.length === 0) throw new Error(`${base} and ${other} hold the same weights: nothing to bisect`);
    // The held-out samples and FP32's outputs once, for every round.
    const evaluateEach = await evaluator(id, undefined, count);
    const first = await evaluateEach([base, other]);
    const [sa, sb] = first.map(score) as [number, number];
    const what = first[0]!.lines ? `% of ${first[0]!.lines.lines} held-out lines read exactly` : `worst-output SQNR (dB) on ${first[0]!.samples} held-out samples`;
    console.log(`${id}: A ${unit(sa)}, B ${unit(sb)} (${what}); ${set.length} weighted node(s) differ`);
    for (let round = 1; set.length > 1; round++) {
      const halves = [set.slice(0, Math.ceil(set.length / 2)), set.slice(Math.ceil(set.length / 2))];
      const files = await Promise.all(
        halves.map(async (h, i) => {
          const file = path.join(dir, `round${round}-${i}.onnx`);
          await withWeightsOf(a, b, h).save(file, { overwrite: true });
          return file;
        }),
      );
      const scores = (await evaluateEach(files)).map(score);
      halves.forEach((h, i) => console.log(`  round ${round}: B's weights on ${names(h)}: ${unit(scores[i]!)} (${(scores[i]! - sa >= 0 ? "+" : "") + (scores[i]! - sa).toFixed(2)} from A)`));
      set = Math.abs(scores[0]! - sa) >= Math.abs(scores[1]! - sa) ? halves[0]! : halves[1]!;
    }
    const [g] = set as [WeightGroup];
    console.log(`ends on ${g.node} (${g.opType}; ${g.initializers.join(", ")})`);
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(`weight-bisect: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
