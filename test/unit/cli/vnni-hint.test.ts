// `ptq quantize`'s advice on a machine that runs int8 weights exactly: only for a file written for every CPU, only
// where this machine could run the faster form; the machine is a parameter here, so the test reads the same anywhere.
import assert from "node:assert/strict";
import test from "node:test";
import { vnniHint } from "../../../cli/quantize";
import type { QuantizationSummary } from "../../../engine/quant/index";

const summary = (weights: QuantizationSummary["weights"]) => ({ weights }) as QuantizationSummary;

test("a uint8-weight file for any CPU, written on a VNNI machine, says --target-cpu vnni is faster there and what it costs", () => {
  const hint = vnniHint(summary({ type: "uint8", targetCpu: "any" }), true);
  assert.match(hint ?? "", /--target-cpu vnni writes them and is faster here/);
  assert.match(hint ?? "", /not exact on x86 CPUs without VNNI/);
  assert.ok(vnniHint(summary({ type: "uint8", targetCpu: "avx2" }), true));
});

test("no advice without VNNI, for int8 weights, for a file already made for vnni/arm, or without weights", () => {
  assert.equal(vnniHint(summary({ type: "uint8", targetCpu: "any" }), false), undefined);
  assert.equal(vnniHint(summary({ type: "int8", targetCpu: "any", reduceRange: true }), true), undefined);
  assert.equal(vnniHint(summary({ type: "int8", targetCpu: "vnni" }), true), undefined);
  assert.equal(vnniHint(summary({ type: "uint8", targetCpu: "arm" }), true), undefined);
  assert.equal(vnniHint(summary(undefined), true), undefined);
});
