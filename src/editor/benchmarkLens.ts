// Where the benchmark code lenses go: lines that call `benchmark(` or carry `// @benchmark`, and the .onnx paths
// the cell names (for "Compare accuracy"). Pure, for tests.

export interface LensSite {
  line: number;
  models: string[];
}

const CALL = /\bbenchmark\s*\(|\/\/\s*@benchmark\b/;
const ONNX_PATH = /(["'`])([^"'`\n]+?\.onnx)\1/g;

/** The first benchmark line of a cell (one pair of lenses per cell), with every .onnx path the cell mentions. */
export function benchmarkSite(text: string): LensSite | undefined {
  const lines = text.split("\n");
  const line = lines.findIndex((l) => CALL.test(l) && !/^\s*import\b/.test(l));
  if (line < 0) return undefined;
  const models = [...new Set([...text.matchAll(ONNX_PATH)].map((m) => m[2]!))];
  return { line, models };
}

/**
 * A cell comparing the models a benchmark cell names on the inputs in `x.npy` (held-out samples, first axis =
 * sample), against the first model by what fits its output (evaluate()'s default without labels: agreement on class
 * scores, CTC CER on a recogniser, mse on one value per sample, cosine on a map); with labels (`labels: readNpy("y.npy")`) it scores top-1.
 */
export function accuracyCellSource(models: string[]): string {
  const list = models.length ? models.map((m) => JSON.stringify(m)).join(", ") : `/* the .onnx files to compare */`;
  return [
    `import { evaluate, loadModel, readNpy } from "ptq";`,
    `const models = [${list}];`,
    `const input = (await loadModel(models[0])).graph.input[0].name;`,
    `await evaluate(models, { inputs: { [input]: readNpy("x.npy") } })`,
  ].join("\n");
}
