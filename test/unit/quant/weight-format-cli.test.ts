// `ptq quantize --weight-type auto` (through the CLI's source, as `npm run demo` runs it): the summary says which
// weights were written and the measurement that chose them; --reduce-range beside it is refused, naming both.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ptq as ptqChild } from "../cli/ptq-child";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const root = path.join(__dirname, "..", "..", "..");
const cnn = path.join(root, "test", "fixtures", "models", "cnn.onnx");
const calib = path.join(root, "test", "fixtures", "data", "calib", "npy");
const tmp = mkdtempSync(path.join(tmpdir(), "ptq-weight-format-"));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const ptq = (...args: string[]) => ptqChild("quantize", cnn, "--calib", calib, "--batch-size", "8", ...args);

test("--weight-type auto: the summary names the weights written and both measurements", () => {
  const r = ptq("-o", path.join(tmp, "auto.onnx"), "--weight-type", "auto", "--method", "minmax");
  assert.equal(r.status, 0, r.stderr);
  const weights = /^ {2}weights (int8 \(7 bits\)|uint8) for target CPU "any"/m.exec(r.stdout);
  assert.ok(weights, r.stdout);
  const why = /^ {2}weightType auto chose (int8 with 7 bits \(U8S7\)|uint8 \(U8U8\)): on the first \d+ calibration row\(s\) worst-output SQNR U8U8 -?[\d.]+ dB, U8S7 -?[\d.]+ dB; U8S7 − U8U8 per row: mean [+−][\d.]+ dB, lower bound [+−][\d.]+ dB/m.exec(r.stdout);
  assert.ok(why, r.stdout);
  assert.equal(weights[1] === "uint8", why[1] === "uint8 (U8U8)", "the line and the measurement agree");
});

test("--weight-type auto with --reduce-range is refused with both named", () => {
  const r = ptq("-o", path.join(tmp, "bad.onnx"), "--weight-type", "auto", "--reduce-range");
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /reduceRange: weightType "auto" chooses the weights' width itself/);
});
