// How a benchmark result reads: a plain-text table (terminal, CLI, text/plain), an HTML table, and a plotly chart
// of median latency with p10–p90 whiskers. Pure functions of the result's JSON so the CLI and the notebook agree.

import type { BenchmarkResult } from "../../engine/analysis/benchmark";
import { escapeHtml, formatBytes, formatMs, renderTable } from "../../engine/analysis/format";
import { MIME } from "../display-types";

type BenchJson = ReturnType<BenchmarkResult["toJSON"]>;


function rows(j: BenchJson): string[][] {
  const out: string[][] = [];
  for (const m of j.models) {
    for (const b of m.batches) {
      const ratio = b.vsFirst;
      out.push([
        m.name,
        String(b.batch),
        formatBytes(m.fileBytes) + (m.sizeRatio !== undefined ? ` (${m.sizeRatio.toFixed(2)}x)` : ""),
        formatMs(m.loadMs),
        formatBytes(m.rssDeltaBytes),
        formatMs(b.coldMs),
        formatMs(b.latencyMs.p50),
        formatMs(b.latencyMs.p90),
        formatMs(b.latencyMs.p99),
        b.throughput.toFixed(1),
        ratio
          ? `${ratio.speedup.toFixed(2)}x [${(1 / ratio.latencyRatio.hi).toFixed(2)}, ${(1 / ratio.latencyRatio.lo).toFixed(2)}]${ratio.verdict.trustworthy ? "" : " (noisy)"}`
          : "baseline",
      ]);
    }
  }
  return out;
}

const HEADER = ["model", "batch", "size", "load", "RSS Δ load", "cold", "p50", "p90", "p99", "samples/s", "speed-up vs first"];

function settingsLine(j: BenchJson): string {
  const s = j.settings;
  const how = s.runs !== null ? `${s.runs} runs` : `${s.seconds} s per batch size`;
  return (
    `${s.ep.toUpperCase()}, ${s.threads} intra-op thread(s), inter-op 1, sequential; ${s.warmup} warm-up + ${how}, ${s.order}; ` +
    `${s.data} data; ${s.machine.cpus}× ${s.machine.cpuModel}, Node ${s.machine.node}. Latency figures are warm; "cold" is the first run at that shape; load is session creation after the runtime was initialised.`
  );
}

function warnings(j: BenchJson): string[] {
  const w = [...j.notes];
  for (const m of j.models) {
    for (const b of m.batches) {
      if (b.vsFirst && !b.vsFirst.verdict.trustworthy) w.push(`${m.name} @ batch ${b.batch}: speed-up not trustworthy: ${b.vsFirst.verdict.reason}`);
    }
  }
  return w;
}

export function benchmarkText(j: BenchJson): string {
  const lines = [renderTable(HEADER, rows(j)), "", settingsLine(j)];
  for (const w of warnings(j)) lines.push(`! ${w}`);
  return lines.join("\n");
}

export function benchmarkHtml(j: BenchJson): string {
  const head = HEADER.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const body = rows(j)
    .map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`)
    .join("");
  const warn = warnings(j)
    .map((w) => `<li>${escapeHtml(w)}</li>`)
    .join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table><p>${escapeHtml(settingsLine(j))}</p>${warn ? `<ul>${warn}</ul>` : ""}`;
}

/** One bar group per batch size, one bar per model: median latency with p10–p90 whiskers. */
export function benchmarkPlot(j: BenchJson): { data: unknown[]; layout: unknown } {
  const data = j.models.map((m) => ({
    type: "bar",
    name: m.name,
    x: m.batches.map((b) => `batch ${b.batch}`),
    y: m.batches.map((b) => b.latencyMs.p50),
    error_y: {
      type: "data",
      symmetric: false,
      array: m.batches.map((b) => b.latencyMs.p90 - b.latencyMs.p50),
      arrayminus: m.batches.map((b) => b.latencyMs.p50 - b.latencyMs.p10),
    },
  }));
  return { data, layout: { barmode: "group", title: { text: "Warm latency (median, p10–p90)" }, yaxis: { title: { text: "ms" } } } };
}

export function benchmarkMimeBundle(j: BenchJson): Record<string, unknown> {
  return {
    [MIME.benchmark]: j,
    [MIME.plotly]: benchmarkPlot(j),
    "text/html": benchmarkHtml(j),
    "text/plain": benchmarkText(j),
  };
}
