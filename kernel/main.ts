// The kernel process (out/kernel/main.js): forked by the extension with an IPC channel, one per notebook, its
// working directory the notebook's folder. jsonrpc runs over IPC because stdout and stderr belong to the cells:
// the kernel never writes to them itself (its own messages go out as Log notifications).
import { existsSync } from "node:fs";
import Module from "node:module";
import path from "node:path";
import { createMessageConnection, IPCMessageReader, IPCMessageWriter } from "vscode-jsonrpc/node";
import { createExecutor, type Executor } from "./executor";
import { captureStreams, log, registerHandlers, type KernelState } from "./handlers";
import { Exiting, KernelEnv, Stream } from "./protocol";

if (!process.send) {
  process.stderr.write("ptq kernel: must be started by the extension with an IPC channel (child_process.fork).\n");
  process.exit(2);
}

// Node ≥ 22.1 (VS Code's extension host): keep V8's compiled code for the TypeScript compiler (9 MB of JavaScript)
// between kernel starts, in Node's default cache folder. Older Node lacks the call; nothing changes there.
(Module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const connection = createMessageConnection(new IPCMessageReader(process), new IPCMessageWriter(process));
const state: KernelState = { cellId: "", running: false };
const realExit = process.exit.bind(process);

/** Where the `ptq` typings were generated: beside the bundle (out/ptq), or out/ptq when run from source. */
function typingsDir(): string {
  const candidates = [path.join(__dirname, "..", "ptq"), path.join(__dirname, "..", "out", "ptq")];
  return candidates.find((d) => existsSync(path.join(d, "package.json"))) ?? candidates[0]!;
}

let executor: Executor | undefined;
function getExecutor(): Executor {
  if (executor) return executor;
  const t0 = performance.now();
  executor = createExecutor({
    // Loaded on first import: onnxruntime-node's native code only when a cell asks for it.
    modules: [{ name: "ptq", typingsDir: typingsDir(), load: () => require("./api") }],
    log: (message) => log(connection, "info", message),
  });
  // Startup phases, for the kernel benchmark and for users wondering why the first cell is slow.
  log(connection, "info", `started: process ${Math.round(t0)} ms, compiler ${Math.round(performance.now() - t0)} ms`);
  return executor;
}

function exitWith(code: number, reason?: string): void {
  const finish = () => realExit(code);
  if (!reason) return finish();
  connection.sendNotification(Exiting.type, { reason, cellId: state.cellId || undefined }).then(finish, finish);
  setTimeout(finish, 500).unref();
}

captureStreams(connection, state);
registerHandlers({ connection, executor: getExecutor, state, exit: (code) => exitWith(code) });

// A cell calling process.exit ends the kernel, as it would in Node, but the client learns why.
process.exit = ((code?: number | string | null) => {
  exitWith(Number(code ?? 0), `process.exit(${code ?? ""}) was called in a cell; the kernel stopped.`);
  // Never return into the cell: it must not keep running after asking to exit.
  throw Object.assign(new Error("process.exit() called"), { name: "KernelExit" });
}) as typeof process.exit;

const reportUncaught = (what: string) => (e: unknown) => {
  const text = e instanceof Error ? (e.stack ?? e.message) : String(e);
  const note = state.running ? "" : " (after the cell finished)";
  void connection.sendNotification(Stream.type, { cellId: state.cellId, name: "stderr", text: `${what}${note}: ${text}\n` });
};
process.on("uncaughtException", reportUncaught("Uncaught exception"));
process.on("unhandledRejection", reportUncaught("Unhandled promise rejection"));
// SIGINT interrupts a busy synchronous cell (vm's breakOnSigint) and, here, an awaiting one.
process.on("SIGINT", () => executor?.interrupt());

// Watchdog: exit when the extension host is gone, even if the IPC disconnect never arrives.
process.on("disconnect", () => realExit(0));
const parentPid = Number(process.env[KernelEnv.parentPid] ?? process.ppid);
setInterval(() => {
  try {
    process.kill(parentPid, 0);
  } catch {
    realExit(0);
  }
}, 2000).unref();

connection.listen();
// Start the compiler now, while the client is still getting ready to send the first cell.
setImmediate(getExecutor);
