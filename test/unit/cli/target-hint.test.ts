// `ptq quantize`'s advice on a machine that runs int8 weights exactly: only for a static file whose weight type was
// left to the target's default, only where this machine could run the faster form. The machine is a parameter here,
// so the test reads the same on any CPU.
import assert from "node:assert/strict";
import test from "node:test";
import { targetHint } from "../../../cli/quantize";
import type { QuantizationSummary } from "../../../engine/quant/index";

const auto = "weightType auto chose uint8 (U8U8)";
const summary = (weights: QuantizationSummary["weights"], mode: "static" | "dynamic" = "static") => ({ mode, weights }) as QuantizationSummary;

test("a uint8-weight file for any CPU, written on a VNNI or ARM machine, names that machine's target and what it costs elsewhere", () => {
  const hint = targetHint(summary({ type: "uint8", targetCpu: "any", why: auto }), "vnni");
  assert.match(hint ?? "", /--target-cpu vnni writes them and is faster here/);
  assert.match(hint ?? "", /not exact on x86 CPUs without VNNI/);
  assert.match(targetHint(summary({ type: "uint8", targetCpu: "avx2", why: auto }), "arm") ?? "", /--target-cpu arm writes them/);
});

test("no advice without such a CPU, for int8 weights, a file made for vnni/arm, a weight type the user gave, dynamic mode", () => {
  assert.equal(targetHint(summary({ type: "uint8", targetCpu: "any", why: auto }), undefined), undefined);
  assert.equal(targetHint(summary({ type: "int8", targetCpu: "any", reduceRange: true, why: auto }), "vnni"), undefined);
  assert.equal(targetHint(summary({ type: "int8", targetCpu: "vnni" }), "vnni"), undefined);
  assert.equal(targetHint(summary({ type: "uint8", targetCpu: "arm" }), "arm"), undefined);
  assert.equal(targetHint(summary({ type: "uint8", targetCpu: "any" }), "vnni"), undefined, "--weight-type uint8 given: --target-cpu would not change it");
  assert.equal(targetHint(summary({ type: "uint8", targetCpu: "any" }, "dynamic"), "vnni"), undefined);
  assert.equal(targetHint(summary(undefined), "vnni"), undefined);
});
