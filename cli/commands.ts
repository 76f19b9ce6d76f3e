// The subcommand table. Each entry's module exports `run(args): Promise<number>` (the exit code) and prints its own
// `--help`. Add a command by adding one line here and one file beside this one.
export interface CliCommand {
  summary: string;
  load: () => Promise<{ run(args: string[]): Promise<number> }>;
}

export const commands: Record<string, CliCommand> = {
  bench: { summary: "Latency, throughput, size and load time of models, interleaved", load: () => import("./bench") },
  inspect: { summary: "Summarize an ONNX model: inputs, outputs, ops, parameters, intermediate shapes", load: () => import("./inspect") },
  demo: { summary: "Quantize the bundled CNN and print FP32 vs INT8 size, speed and accuracy", load: () => import("./demo") },
  notebook: { summary: "Run a TypeScript notebook's cells in a PTQ kernel and save it with their outputs", load: () => import("./notebook") },
  quantize: { summary: "Quantize a model to INT8 (static with calibration data, or dynamic)", load: () => import("./quantize") },
  report: { summary: "Accuracy drop (paired CI) and speed-up of a quantized model vs its original", load: () => import("./report") },
};
