// Which int8 kernels onnxruntime's MLAS will use on this CPU decides the safe default weight type. On x86 without
// VNNI (AVX2 only) u8×s8 products go through VPMADDUBSW, whose int16 pair sums saturate at full-range weights:
// measured here, a U8S8 QLinearConv fell from 41 dB to 17 dB SQNR while U8U8 kept 41 dB (test/unit/quant).
import { readFileSync } from "node:fs";

let cached: boolean | undefined;

const isX86 = () => process.arch === "x64" || process.arch === "ia32";

/** True where signed-weight int8 GEMM is exact: x86 with VNNI/AMX, or non-x86 (ARM sdot/udot). */
export function signedWeightsSafe(): boolean {
  if (cached !== undefined) return cached;
  if (!isX86()) return (cached = true);
  try {
    const flags = readFileSync("/proc/cpuinfo", "utf8");
    cached = /\b(avx512_vnni|avx_vnni|amx_int8)\b/.test(flags);
  } catch {
    cached = false; // unknown x86 (macOS/Windows): assume no VNNI, the choice that is exact everywhere
  }
  return cached;
}

/** The target CPU whose int8 weights this machine runs exactly (the same rule as signedWeightsSafe), if any. */
export function exactInt8Target(): "vnni" | "arm" | undefined {
  if (!signedWeightsSafe()) return undefined;
  return isX86() ? "vnni" : "arm";
}
