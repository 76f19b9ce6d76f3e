// Builds every bundle the extension ships: the extension host (cjs, `vscode` external), the kernel process and the
// CLI (cjs, native and TypeScript-heavy packages external), and the browser bundles (renderer, webviews: ESM).
import * as esbuild from "esbuild";
import { existsSync } from "node:fs";

const production = process.argv.includes("--production");
const watch = process.argv.includes("--watch");

const common = {
  bundle: true,
  sourcemap: production ? false : "linked",
  minify: production,
  logLevel: "warning",
  legalComments: "none",
};

/** Node-side packages that must stay real files at run time (native code, TypeScript compiler). */
const nodeExternals = ["onnxruntime-node", "tslab", "typescript", "@tslab/typescript-for-tslab"];

const targets = [
  { entryPoints: ["src/extension.ts"], outfile: "out/extension.js", platform: "node", format: "cjs", target: "node20", external: ["vscode"] },
  { entryPoints: ["kernel/main.ts"], outfile: "out/kernel/main.js", platform: "node", format: "cjs", target: "node20", external: nodeExternals },
  { entryPoints: ["cli/main.ts"], outfile: "out/cli.js", platform: "node", format: "cjs", target: "node20", external: nodeExternals },
  // The engine as a library (package.json "exports": "ptq-studio/engine").
  { entryPoints: ["engine/index.ts"], outfile: "out/engine.js", platform: "node", format: "cjs", target: "node20", external: nodeExternals },
  { entryPoints: ["media/renderer/index.ts"], outfile: "out/media/renderer.js", platform: "browser", format: "esm", target: "es2022" },
  // Plotly on its own, imported lazily by the renderer and the webviews the first time they draw a chart.
  { entryPoints: ["media/renderer/plotly-entry.ts"], outfile: "out/media/plotly.js", platform: "browser", format: "esm", target: "es2022", sourcemap: false },
  { entryPoints: ["media/webview/main.ts"], outfile: "out/media/webview.js", platform: "browser", format: "esm", target: "es2022" },
  // The ONNX editor's page: Summary | Graph, with @dagrejs/dagre for the layout.
  { entryPoints: ["media/graph/main.ts"], outfile: "out/media/graph.js", platform: "browser", format: "esm", target: "es2022" },
].filter((t) => existsSync(t.entryPoints[0]));

if (watch) {
  for (const t of targets) await (await esbuild.context({ ...common, ...t })).watch();
} else {
  await Promise.all(targets.map((t) => esbuild.build({ ...common, ...t })));
  // Typings of the `ptq` module notebook cells import (slow: a type-checked declaration emit, so only when stale).
  const { buildPtqTypesIfStale } = await import("./build-ptq-types.mjs");
  buildPtqTypesIfStale();
}
