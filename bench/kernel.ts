// The notebook kernel's latencies and memory, measured through the same client the extension uses
// (client/kernelProcess.ts) on the built kernel (out/kernel/main.js: run `npm run build` first).
//
//   node --import tsx bench/kernel.ts [--starts 3] [--cells 50] [--json]
//
// - start → first result: fork a fresh kernel and run `1 + 1`, until its response arrives (targets ≤ 1.5 s).
// - pre-started (what the extension does when a notebook opens): fork → compiler ready, then the first cell's
//   round trip on that ready kernel.
// - trivial cell round trip, warm: `1` on a kernel that has run cells (target ≤ 50 ms); median and p90.
// - streaming latency: a cell prints Date.now() every 20 ms; latency = arrival time − the printed time.
// - idle memory: the kernel's RSS after its first cell, and after `import ... from "ptq"` (onnxruntime loaded).
import { readFileSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Log, Stream } from "../kernel/protocol";
import { KernelProcess } from "../client/kernelProcess";

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const starts = arg("starts", 3);
const cells = arg("cells", 50);
const mainPath = path.resolve(__dirname, "..", "out", "kernel", "main.js");
const cwd = mkdtempSync(path.join(os.tmpdir(), "ptq-bench-kernel-"));

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

async function main(): Promise<void> {
  const startMs: number[] = [];
  const phases: string[] = [];
  for (let i = 0; i < starts; i++) {
    const t0 = performance.now();
    const k = new KernelProcess({ mainPath, cwd, executionProvider: "cpu" });
    k.connection.onNotification(Log.type, (p) => /^started:/.test(p.message) && phases.push(p.message));
    const r = await k.execute({ cellId: "c1", code: "1 + 1", executionCount: 1 });
    startMs.push(performance.now() - t0);
    if (r.status !== "ok") throw new Error(`first cell failed: ${JSON.stringify(r.error)}`);
    await k.shutdown();
  }

  const readyMs: number[] = [];
  const firstAfterReadyMs: number[] = [];
  for (let i = 0; i < starts; i++) {
    const t0 = performance.now();
    const k = new KernelProcess({ mainPath, cwd, executionProvider: "cpu" });
    await new Promise<void>((resolve) => k.connection.onNotification(Log.type, (p) => /^started:/.test(p.message) && resolve()));
    readyMs.push(performance.now() - t0);
    const t1 = performance.now();
    const r = await k.execute({ cellId: "c1", code: "1 + 1", executionCount: 1 });
    firstAfterReadyMs.push(performance.now() - t1);
    if (r.status !== "ok") throw new Error(`first cell failed: ${JSON.stringify(r.error)}`);
    await k.shutdown();
  }

  const k = new KernelProcess({ mainPath, cwd, executionProvider: "cpu" });
  let n = 0;
  const run = async (code: string) => {
    const r = await k.execute({ cellId: `c${++n}`, code, executionCount: n });
    if (r.status !== "ok") throw new Error(`cell failed: ${JSON.stringify(r.error)}`);
  };
  await run("const warm: number = 1;");
  const idleRss = rssMiB(k.pid!);
  for (let i = 0; i < 5; i++) await run("1");
  const rtt: number[] = [];
  for (let i = 0; i < cells; i++) {
    const t0 = performance.now();
    await run("1");
    rtt.push(performance.now() - t0);
  }

  const lat: number[] = [];
  const sub = k.connection.onNotification(Stream.type, (p) => {
    for (const line of p.text.split("\n")) if (/^\d{13}$/.test(line)) lat.push(Date.now() - Number(line));
  });
  await run("for (let i = 0; i < 50; i++) { console.log(Date.now()); await new Promise((r) => setTimeout(r, 20)); }");
  sub.dispose();

  await run('import { display, benchmark } from "ptq";\nconst _keep = [display, benchmark];');
  await new Promise((r) => setTimeout(r, 500));
  const ptqRss = rssMiB(k.pid!);
  await k.shutdown();

  const result = {
    machine: `${os.cpus().length} vCPU ${os.cpus()[0]?.model ?? ""}, load average ${os.loadavg()[0]!.toFixed(1)}`,
    node: process.version,
    startToFirstResultMs: startMs.map((x) => Math.round(x)),
    startPhases: phases,
    preStartedReadyMs: readyMs.map((x) => Math.round(x)),
    preStartedFirstResultMs: firstAfterReadyMs.map((x) => Math.round(x)),
    trivialCellMs: { median: +quantile(rtt, 0.5).toFixed(1), p90: +quantile(rtt, 0.9).toFixed(1), n: rtt.length },
    streamLatencyMs: { median: quantile(lat, 0.5), p90: quantile(lat, 0.9), n: lat.length },
    idleRssMiB: Math.round(idleRss),
    rssAfterPtqImportMiB: Math.round(ptqRss),
  };
  console.log(process.argv.includes("--json") ? JSON.stringify(result) : result);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
