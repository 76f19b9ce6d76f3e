// The search's strategy over an injected measure: which configurations it asks for and which it picks, with a
// measure made up in the test (no model, no runtime).
import { test } from "node:test";
import assert from "node:assert/strict";
import { prefixSearch, type Verdict } from "../../../engine/analysis/search/strategy";
import type { MixConfig } from "../../../engine/analysis/search/mixed-model";

/** A measure where the target is met once `need` says so; records every configuration asked for. */
function fakeMeasure(need: (c: MixConfig) => boolean) {
  const asked: string[] = [];
  const measure = async (c: MixConfig): Promise<Verdict> => {
    asked.push(`${c.keepFloat.join("")}|${c.int16.join("")}`);
    return { keptFloat: c.keepFloat, int16: c.int16, met: need(c) };
  };
  return { asked, measure };
}

const nodes = ["a", "b", "c", "d", "e", "f", "g", "h"];

test("float remedy: the smallest prefix of the ranking that meets the target, found by binary search", async () => {
  const { asked, measure } = fakeMeasure((c) => c.keepFloat.length >= 5);
  const chosen = await prefixSearch("float", { float: nodes, int16: nodes }, measure);
  assert.deepEqual(chosen.keptFloat, ["a", "b", "c", "d", "e"]);
  assert.deepEqual(chosen.int16, []);
  assert.ok(asked.length <= 2 + Math.ceil(Math.log2(nodes.length)) + 2, `asked ${asked.length}: ${asked}`);
  assert.ok(asked.every((a) => a.endsWith("|")), "no 16-bit node under remedy float");
});

test("auto: the remedy that changes fewer nodes wins, 16 bits on a tie", async () => {
  const fewer16 = await prefixSearch("auto", { float: nodes, int16: nodes }, fakeMeasure((c) => c.keepFloat.length >= 3 || c.int16.length >= 2).measure);
  assert.deepEqual([fewer16.keptFloat, fewer16.int16], [[], ["a", "b"]]);
  const tie = await prefixSearch("auto", { float: nodes, int16: nodes }, fakeMeasure((c) => c.keepFloat.length >= 2 || c.int16.length >= 2).measure);
  assert.deepEqual([tie.keptFloat, tie.int16], [[], ["a", "b"]]);
  const fewerFloat = await prefixSearch("auto", { float: nodes, int16: nodes }, fakeMeasure((c) => c.keepFloat.length >= 1 || c.int16.length >= 4).measure);
  assert.deepEqual([fewerFloat.keptFloat, fewerFloat.int16], [["a"], []]);
});

test("auto: neither remedy alone meets the target, the two combined do (fewest float nodes, then fewest 16-bit)", async () => {
  // Needs "a" float and "b" at 16 bits; "b" may not be float (over a weight budget): a alone in float is not
  // enough, nor are 16 bits everywhere.
  const need = (c: MixConfig) => c.keepFloat.includes("a") && c.int16.includes("b");
  const chosen = await prefixSearch("auto", { float: nodes.filter((n) => n !== "b"), int16: ["c", "b", "d"] }, fakeMeasure(need).measure);
  assert.deepEqual(chosen.keptFloat, ["a"]);
  assert.deepEqual(chosen.int16, ["c", "b"]);
  assert.equal(chosen.met, true);
});

test("nothing meets the target: every candidate the remedy may touch", async () => {
  const never = () => false;
  const f = await prefixSearch("float", { float: ["a", "b"], int16: nodes }, fakeMeasure(never).measure);
  assert.deepEqual([f.keptFloat, f.int16, f.met], [["a", "b"], [], false]);
  const s = await prefixSearch("int16", { float: ["a", "b"], int16: nodes }, fakeMeasure(never).measure);
  assert.deepEqual([s.keptFloat, s.int16], [[], nodes]);
  const both = await prefixSearch("auto", { float: ["a", "b"], int16: nodes }, fakeMeasure(never).measure);
  assert.deepEqual([both.keptFloat, both.int16], [["a", "b"], nodes.slice(2)]);
});
