// Runtime error positions mapped from tslab's converted JavaScript back to the cell's TypeScript.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cleanStack, mapOutputPosition } from "../../../kernel/ts-position";

const source = ["// comment", "const x: number = 1;", "", "function f(a: number) {", "  throw new Error('boom' + a);", "}", "f(x);"];
// What tslab's converter emits for it (types erased, exports lines added, blank line dropped).
const output = ['Object.defineProperty(exports, "__esModule", { value: true });', "exports.f = exports.x = void 0;", "// comment",
  "const x = 1;", "exports.x = x;", "function f(a) {", "    throw new Error('boom' + a);", "}", "exports.f = f;", "f(x);"];
const cell = { output, source, prefix: 10 };

test("output positions map to the source line and column", () => {
  assert.deepEqual(mapOutputPosition(cell, 7, 11), { line: 5, column: 9 });
  assert.deepEqual(mapOutputPosition(cell, 10, 1), { line: 7, column: 1 });
  assert.equal(mapOutputPosition(cell, 99, 1), undefined);
});

test("stacks keep cell frames (rewritten) and user frames, drop the kernel's", () => {
  const err = new Error("boom1");
  err.stack = ["cell3.ts:7", "    throw new Error('boom' + a);", "    ^", "", "Error: boom1", "    at lib (/home/u/node_modules/lib/index.js:3:9)",
    "    at f (cell3.ts:7:11)", "    at cell3.ts:10:1", "    at cell3.ts:10:99", "    at Script.runInThisContext (node:vm:135:14)",
    "    at Object.execute (/ext/out/kernel/main.js:3542:42)"].join("\n");
  const { stack, positions } = cleanStack(err, new Map([["cell3.ts", cell]]));
  assert.equal(stack, "Error: boom1\n    at lib (/home/u/node_modules/lib/index.js:3:9)\n    at f (cell3.ts:5:9)\n    at cell3.ts:7:1");
  assert.deepEqual(positions[0], { file: "cell3.ts", line: 5, column: 9 });
});

test("frames inside the kernel bundle (ptq's own functions) say (ptq), not a line of out/kernel/main.js", () => {
  const bundle = "/ext/out/kernel/main.js";
  const err = new Error("QConfig.calibration.method: \"bogus\"");
  err.stack = ["Error: QConfig.calibration.method: \"bogus\"", `    at resolveConfig (${bundle}:11885:11)`, `    at ${bundle}:12891:20`,
    "    at cell2.ts:10:1", "    at Script.runInThisContext (node:vm:135:14)", `    at Object.execute (${bundle}:3542:42)`].join("\n");
  const { stack } = cleanStack(err, new Map([["cell2.ts", cell]]), bundle);
  assert.equal(stack, "Error: QConfig.calibration.method: \"bogus\"\n    at resolveConfig (ptq)\n    at (ptq)\n    at cell2.ts:7:1");
});
