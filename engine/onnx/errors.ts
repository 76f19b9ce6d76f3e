// One error type for everything that is wrong with an ONNX file or graph, so callers (CLI, kernel, editor) can
// show the message as-is: it always names the file, tensor or node and says what to do.
export class OnnxError extends Error {
  override readonly name = "OnnxError";
  constructor(
    message: string,
    /** The file the problem was found in, when there is one. */
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
  }
}

/** An output that is already there and may not be replaced: the message says how, for the CLI and the API alike. */
export function outputExists(file: string, what = "the file"): OnnxError {
  return new OnnxError(`${what} exists: choose another output, or replace it (CLI: --overwrite; API: { overwrite: true })`, file);
}
