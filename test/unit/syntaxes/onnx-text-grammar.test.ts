// Tokenizes printed ONNX text with the real TextMate engine VS Code uses (vscode-textmate + oniguruma wasm) and
// checks the scopes of keywords, types, op names, attributes, strings, numbers and comments.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import * as vsctm from "vscode-textmate";
import * as oniguruma from "vscode-oniguruma";
import { printModel } from "../../../engine/onnx-text/printer";
import { mlp, node, graph, model, valueInfo } from "../editor/build-model";

const root = path.join(__dirname, "..", "..", "..");
let grammar: vsctm.IGrammar;

before(async () => {
  const wasm = readFileSync(path.join(root, "node_modules/vscode-oniguruma/release/onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (s: string[]) => new oniguruma.OnigScanner(s),
      createOnigString: (s: string) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scope) => {
      if (scope !== "source.onnx-text") return null;
      const file = path.join(root, "syntaxes/onnx-text.tmLanguage.json");
      return vsctm.parseRawGrammar(readFileSync(file, "utf8"), file);
    },
  });
  const g = await registry.loadGrammar("source.onnx-text");
  assert.ok(g, "grammar loads");
  grammar = g;
});

/** Every token of the text as [text, innermost scope]. */
function tokens(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let state = vsctm.INITIAL;
  for (const line of text.split("\n")) {
    const r = grammar.tokenizeLine(line, state);
    for (const t of r.tokens) out.push([line.slice(t.startIndex, t.endIndex), t.scopes[t.scopes.length - 1]!]);
    state = r.ruleStack;
  }
  return out;
}

function scopeOf(toks: Array<[string, string]>, text: string, nth = 0): string {
  const hits = toks.filter(([t]) => t.trim() === text);
  assert.ok(hits.length > nth, `token ${JSON.stringify(text)} not found in ${JSON.stringify(toks.slice(0, 40))}`);
  return hits[nth]![1];
}

test("header keys, op names, types, attributes, numbers, strings and comments get their scopes", () => {
  const toks = tokens(printModel(mlp()));
  assert.equal(scopeOf(toks, "ir_version"), "keyword.other.header.onnx-text");
  assert.equal(scopeOf(toks, "opset_import"), "keyword.other.header.onnx-text");
  assert.equal(scopeOf(toks, "pytorch"), "string.quoted.double.onnx-text");
  assert.equal(scopeOf(toks, "main_graph"), "entity.name.function.graph.onnx-text");
  assert.equal(scopeOf(toks, "float"), "storage.type.tensor.onnx-text");
  assert.equal(scopeOf(toks, "int64"), "storage.type.tensor.onnx-text");
  assert.equal(scopeOf(toks, "MatMul"), "entity.name.function.op.onnx-text");
  assert.equal(scopeOf(toks, "LeakyRelu"), "entity.name.function.op.onnx-text");
  assert.equal(scopeOf(toks, "alpha"), "variable.parameter.attribute.onnx-text");
  assert.equal(scopeOf(toks, "ints"), "storage.type.attribute.onnx-text");
  assert.equal(scopeOf(toks, "0.1"), "constant.numeric.onnx-text");
  assert.equal(scopeOf(toks, "-1"), "constant.numeric.onnx-text");
  assert.equal(scopeOf(toks, "=>"), "keyword.operator.arrow.onnx-text");
  assert.match(scopeOf(toks, "256 values, 1024 bytes elided"), /^comment\.line\.number-sign/);
  assert.equal(scopeOf(toks, "\"/fc1/MatMul\""), "entity.name.tag.node.onnx-text");
});

test("tensor names that look like types or numbers stay plain; domains and subgraphs are scoped", () => {
  const body = graph("body", [node("Identity", ["x"], ["z"])], [], [valueInfo("z", 1, [1])]);
  const m = model(graph("g", [
    node("QGemm", ["float", "b"], ["c"], {}, { domain: "com.microsoft" }),
    node("If", ["cond"], ["y"], { then_branch: body, else_branch: body }),
    node("Pad", ["c", "p"], ["q"], { mode: "constant" }),
  ], [valueInfo("cond", 9, []), valueInfo("float", 1, [1])], [valueInfo("y", 1, [1])]));
  const toks = tokens(printModel(m));
  assert.equal(scopeOf(toks, "QGemm"), "entity.name.function.op.onnx-text");
  assert.equal(scopeOf(toks, "com.microsoft."), "entity.name.namespace.domain.onnx-text");
  assert.equal(scopeOf(toks, "then_branch"), "variable.parameter.attribute.onnx-text");
  assert.equal(scopeOf(toks, "graph"), "storage.type.attribute.onnx-text");
  assert.equal(scopeOf(toks, "body"), "entity.name.function.graph.onnx-text");
  assert.equal(scopeOf(toks, "string"), "storage.type.attribute.onnx-text");
  assert.equal(scopeOf(toks, "constant"), "string.quoted.double.onnx-text");
  // `float` as the input's name inside QGemm's argument list is a name, not a type.
  const args = toks.filter(([t]) => t === "float");
  assert.ok(args.some(([, s]) => !s.startsWith("storage.type")), `a tensor named float stays a name: ${JSON.stringify(args)}`);
});
