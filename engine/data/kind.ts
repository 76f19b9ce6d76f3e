// What kind of data a path holds, as openData() reads it, from names alone: light enough for the extension host
// (the wizard asks how images were normalized only when the folder is read as images).
import { readdirSync, statSync } from "node:fs";

/** What openData reads at `p`: "images" for a folder it reads as images; undefined where it reads nothing. */
export function dataKind(p: string): "npz" | "npy" | "test-data" | "images" | undefined {
  const stat = statSync(p, { throwIfNoEntry: false });
  if (!stat) return undefined;
  if (!stat.isDirectory()) return p.toLowerCase().endsWith(".npz") ? "npz" : p.toLowerCase().endsWith(".npy") ? "npy" : undefined;
  const names = readdirSync(p);
  if (names.some((n) => n.startsWith("test_data_set_")) || names.some((n) => /^input_\d+\.pb$/.test(n))) return "test-data";
  if (names.some((n) => n.toLowerCase().endsWith(".npz"))) return "npz";
  if (names.some((n) => n.toLowerCase().endsWith(".npy"))) return "npy";
  if (names.some((n) => /\.(png|jpe?g)$/i.test(n))) return "images";
  return undefined;
}
