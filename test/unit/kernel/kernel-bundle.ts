// Bundles kernel/main.ts the way the build does, into out/<dir>/main.js, for tests that fork a real kernel. Each
// test file uses its own dir: test files run concurrently and must not write one bundle at the same time.
import path from "node:path";
import * as esbuild from "esbuild";
// @ts-expect-error: a build script without typings
import { buildPtqTypesIfStale } from "../../../scripts/build-ptq-types.mjs";

export const root = path.resolve(__dirname, "../../..");

/** Synchronous: describe bodies fork kernels while tests are collected, before any before() hook runs. */
export function buildTestKernel(dir: string): string {
  const mainPath = path.join(root, "out", dir, "main.js");
  esbuild.buildSync({
    entryPoints: [path.join(root, "kernel/main.ts")], outfile: mainPath, bundle: true, platform: "node", format: "cjs",
    target: "node20", external: ["onnxruntime-node", "tslab", "typescript", "@tslab/typescript-for-tslab"], logLevel: "error",
  });
  buildPtqTypesIfStale(root);
  return mainPath;
}
