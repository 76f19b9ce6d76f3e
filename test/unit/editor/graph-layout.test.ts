import { test } from "node:test";
import assert from "node:assert/strict";
import { HUB_FANOUT, layoutGraph, mergeEdges, nodeSize, splitHubs, type GraphLayout } from "../../../media/graph/layout";
import { navIndex, neighbour, nextMatch } from "../../../media/graph/nav";
import { label, matchesQuery, visibleText } from "../../../media/graph/text";
import { modelGraph } from "../../../src/editor/graphModel";
import { graph, mlp, model, node, valueInfo } from "./build-model";

function overlaps(l: GraphLayout): string[] {
  const bad: string[] = [];
  l.nodes.forEach((a, i) => l.nodes.slice(i + 1).forEach((b) => {
    if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height) bad.push(`${a.node.id}/${b.node.id}`);
  }));
  return bad;
}

test("layout places every node without overlap, top to bottom along the edges, inside the layout's size", () => {
  const l = layoutGraph(modelGraph(mlp()).graph);
  assert.equal(l.nodes.length, 8);
  assert.deepEqual(overlaps(l), []);
  const y = new Map(l.nodes.map((p) => [p.node.id, p.y]));
  for (const e of l.edges) {
    assert.ok(y.get(e.from)! < y.get(e.to)!, `${e.from} above ${e.to}`);
    assert.ok(e.points.length >= 2, "edges have a path");
  }
  for (const p of l.nodes) assert.ok(p.x >= 0 && p.y >= 0 && p.x + p.width <= l.width && p.y + p.height <= l.height);
});

test("two tensors between the same nodes are one edge listing both; node width follows the label, capped", () => {
  assert.deepEqual(mergeEdges([{ from: "a", to: "b", tensor: "t1" }, { from: "a", to: "b", tensor: "t2", type: "float[1]" }, { from: "b", to: "c", tensor: "t3" }]), [
    { from: "a", to: "b", tensors: [{ tensor: "t1", type: undefined }, { tensor: "t2", type: "float[1]" }] },
    { from: "b", to: "c", tensors: [{ tensor: "t3", type: undefined }] },
  ]);
  const n = (name: string) => ({ id: "x", kind: "node" as const, name, op: "Conv", inputs: [], outputs: [], attributes: [] });
  assert.ok(nodeSize(n("a")).width < nodeSize(n("a".repeat(25))).width);
  assert.equal(nodeSize(n("a".repeat(10_000))).width, nodeSize(n("a".repeat(100))).width);
});

test("an expanded If node holds its laid-out bodies; collapsed, it is an ordinary box", () => {
  const body = graph("b", [node("Relu", ["x"], ["a"]), node("Neg", ["a"], ["o"])], [], [valueInfo("o", 1, [1])]);
  const g = modelGraph(model(graph("g", [node("If", ["c"], ["y"], { then_branch: body, else_branch: body }, { name: "if" })], [valueInfo("c", 9, [])], [valueInfo("y", 1, [1])]))).graph;
  const id = g.nodes.find((n) => n.name === "if")!.id;
  const collapsed = layoutGraph(g).nodes.find((p) => p.node.id === id)!;
  const open = layoutGraph(g, new Set([id])).nodes.find((p) => p.node.id === id)!;
  assert.equal(collapsed.bodies, undefined);
  assert.equal(open.bodies!.length, 2);
  assert.ok(open.height > collapsed.height + open.bodies![0]!.layout.height);
  for (const b of open.bodies!) assert.ok(b.x + b.layout.width <= open.width && b.y + b.layout.height <= open.height, "bodies inside the node");
  const ix = navIndex(layoutGraph(g, new Set([id])));
  assert.ok([...ix.boxes.keys()].some((k) => k.startsWith(`${id}/then_branch/`)), "body nodes are reachable by keyboard");
});

test("arrow keys: down to a consumer, up to a producer, left/right along the row; search cycles its matches", () => {
  // x feeds two branches that meet again: a diamond.
  const m = model(graph("d", [
    node("Relu", ["x"], ["a"], {}, { name: "top" }),
    node("Sigmoid", ["a"], ["l"], {}, { name: "left" }),
    node("Tanh", ["a"], ["r"], {}, { name: "right" }),
    node("Add", ["l", "r"], ["y"], {}, { name: "join" }),
  ], [valueInfo("x", 1, [1])], [valueInfo("y", 1, [1])]));
  const g = modelGraph(m).graph;
  const id = (name: string) => g.nodes.find((n) => n.name === name)!.id;
  const ix = navIndex(layoutGraph(g));
  const down = neighbour(ix, id("top"), "down");
  assert.ok(down === id("left") || down === id("right"));
  const side = neighbour(ix, down!, ix.boxes.get(down!)!.x < ix.boxes.get(down === id("left") ? id("right") : id("left"))!.x ? "right" : "left");
  assert.equal(side, down === id("left") ? id("right") : id("left"));
  assert.equal(neighbour(ix, id("join"), "up") !== undefined, true);
  assert.equal(neighbour(ix, id("top"), "up"), g.nodes[0]!.id, "up from the first node reaches the graph input");
  assert.equal(neighbour(ix, g.nodes[0]!.id, "up"), undefined);
  assert.equal(nextMatch(["a", "b", "c"], undefined), "a");
  assert.equal(nextMatch(["a", "b", "c"], "c"), "a");
  assert.equal(nextMatch(["a", "b", "c"], "a", true), "c");
  assert.equal(nextMatch([], "a"), undefined);
  assert.ok(matchesQuery({ name: "/backbone/Conv_3", op: "Conv" }, "conv_3"));
  assert.ok(matchesQuery({ name: "n", op: "MatMul" }, " matmul "));
  assert.ok(!matchesQuery({ name: "n", op: "MatMul" }, "  "));
});

test("labels: invisible and direction-changing characters are written out; long names are cut in the middle", () => {
  assert.equal(visibleText("conv\u202Egnp.exe"), "conv\\u{202e}gnp.exe");
  assert.equal(visibleText("a\u200Fb\u2066c\u0000d"), "a\\u{200f}b\\u{2066}c\\u{0}d");
  assert.equal(visibleText("plain/名前_1"), "plain/名前_1");
  const long = label(`/start/${"x".repeat(10_000)}/Conv_end`, 30);
  assert.equal(long.length, 30);
  assert.ok(long.startsWith("/start/") && long.endsWith("Conv_end") && long.includes("…"));
  assert.equal(label("short", 30), "short");
});

test("an input read by many nodes is drawn once beside each reader; one read by a few stays one box", () => {
  const readers = (n: number, input: string) => Array.from({ length: n }, (_, i) => node("Add", [i === 0 ? "x" : `a${i - 1}`, input], [`a${i}`], {}, { name: `add${i}` }));
  const build = (n: number) => modelGraph(model(graph("h", readers(n, "mask"), [valueInfo("x", 1, [1]), valueInfo("mask", 1, [1])], [valueInfo(`a${n - 1}`, 1, [1])]))).graph;
  const few = build(HUB_FANOUT);
  assert.equal(splitHubs(few), few, "at the limit nothing is split");
  const many = build(HUB_FANOUT + 4);
  const split = splitHubs(many);
  const mask = many.nodes.find((n) => n.name === "mask")!;
  const copies = split.nodes.filter((n) => n.name === "mask");
  assert.equal(copies.length, HUB_FANOUT + 4);
  assert.deepEqual(copies.map((c) => c.id), copies.map((_, k) => `${mask.id}~${k}`));
  assert.ok(!split.edges.some((e) => e.from === mask.id), "no edge from the original box");
  assert.equal(new Set(split.edges.filter((e) => e.tensor === "mask").map((e) => e.from)).size, HUB_FANOUT + 4, "one copy per reader");
  assert.equal(split.nodes.find((n) => n.name === "x")!.id, many.nodes.find((n) => n.name === "x")!.id, "x (one reader) unchanged");
  const l = layoutGraph(many);
  assert.equal(l.nodes.length, split.nodes.length);
  assert.deepEqual(overlaps(l), []);
});
