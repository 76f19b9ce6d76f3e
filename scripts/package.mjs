// Builds the .vsix: stages only what runs into a temp folder and runs @vscode/vsce there with --no-dependencies.
// The runtime packages (onnxruntime-node with ONLY this platform's binaries, tslab with the TypeScript it uses) are
// copied under out/node_modules, where the kernel and CLI bundles in out/ resolve them, because vsce never packs a
// top-level node_modules with --no-dependencies. tslab's Jupyter/zeromq and CLI parts are left out: the kernel uses
// its executor and converter only (zeromq is imported lazily by tslab's jupyter.js, never on that path).
//
//   node scripts/package.mjs [--target linux-x64|linux-arm64|darwin-arm64|win32-x64|win32-arm64] [--out file.vsix]
// Run `node scripts/build.mjs --production` first (`npm run package` does both).
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const target = opt("--target", `${process.platform}-${process.arch}`);
const [platform, arch] = target.split("-");
const pkg = JSON.parse(readFileSync(path.join(repo, "package.json"), "utf8"));
const outFile = path.resolve(opt("--out", path.join(repo, `${pkg.name}-${pkg.version}-${target}.vsix`)));
const MAX_MB = 35;

function fail(msg) {
  console.error(`package: ${msg}`);
  process.exit(1);
}

const nm = path.join(repo, "node_modules");
const ortBin = path.join(nm, "onnxruntime-node", "bin", "napi-v6", platform, arch);
if (!existsSync(ortBin)) fail(`onnxruntime-node has no binaries for ${target} (${ortBin})`);
if (!existsSync(path.join(repo, "out", "extension.js"))) fail("out/extension.js missing: run `node scripts/build.mjs --production` first");

/**
 * The runtime packages and, per package, the files kept (relative globs are plain prefixes/suffixes: small enough
 * to read). Each is copied from the repo's node_modules (npm ci installed it from the lock file).
 */
const runtime = [
  { name: "onnxruntime-common", keep: (f) => f === "package.json" || f === "LICENSE" || (f.startsWith("dist/cjs/") && f.endsWith(".js")) },
  {
    name: "onnxruntime-node",
    keep: (f) =>
      f === "package.json" || f === "LICENSE" || f === "ThirdPartyNotices.txt" ||
      (f.startsWith("dist/") && f.endsWith(".js")) || f.startsWith(`bin/napi-v6/${platform}/${arch}/`),
  },
  {
    name: "tslab",
    keep: (f) =>
      f === "package.json" || f === "LICENSE" ||
      (f.startsWith("dist/") && f.endsWith(".js") && f !== "dist/main.js") ||
      // Node's types for cells: tslab falls back to its own @types when the workspace has none.
      ((f.startsWith("node_modules/@types/node/") || f.startsWith("node_modules/undici-types/")) && (f.endsWith(".d.ts") || f.endsWith("package.json"))),
  },
  {
    name: "@tslab/typescript-for-tslab",
    keep: (f) => f === "package.json" || f === "LICENSE.txt" || f === "lib/typescript.js" || /^lib\/lib\.[^/]*\.d\.ts$/.test(f) || f === "lib/lib.d.ts",
  },
  { name: "semver", keep: (f) => f.endsWith(".js") || f === "package.json" || f === "LICENSE" },
];

function walk(dir, base = dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p, base, out);
    else out.push(path.relative(base, p).split(path.sep).join("/"));
  }
  return out;
}

const stage = mkdtempSync(path.join(os.tmpdir(), "ptq-package-"));
try {
  // Our own files. vsce applies .vscodeignore (the whitelist) on top of this.
  for (const p of ["out", "media", "syntaxes", "LICENSE", ".vscodeignore"]) {
    // No sources or source maps: vsce's negations would win over any exclusion in .vscodeignore.
    const filter = (src) => !src.endsWith(".map") && !(src.endsWith(".ts") && !src.endsWith(".d.ts"));
    if (existsSync(path.join(repo, p))) cpSync(path.join(repo, p), path.join(stage, p), { recursive: true, filter });
  }
  rmSync(path.join(stage, "out", "test"), { recursive: true, force: true });
  // README: vsce refuses relative links and images without a repository URL; they become plain text naming the path.
  const readme = readFileSync(path.join(repo, "README.md"), "utf8")
    .replace(/!\[([^\]]*)\]\((?!https?:)([^)]+)\)/g, "_(image in the repository: $2)_")
    .replace(/\[([^\]]*)\]\((?!https?:|#)([^)]+)\)/g, "$1 (in the repository: $2)");
  writeFileSync(path.join(stage, "README.md"), readme);
  const { devDependencies, scripts, allowScripts, bin, ...manifest } = pkg;
  void devDependencies, scripts, allowScripts, bin;
  writeFileSync(path.join(stage, "package.json"), JSON.stringify(manifest, null, 2) + "\n");

  for (const { name, keep } of runtime) {
    const src = path.join(nm, name);
    if (!existsSync(src)) fail(`node_modules/${name} missing: run npm ci`);
    let n = 0;
    for (const f of walk(src)) {
      if (!keep(f)) continue;
      cpSync(path.join(src, f), path.join(stage, "out", "node_modules", name, f));
      n++;
    }
    if (n === 0) fail(`nothing kept from node_modules/${name}`);
  }

  const vsce = path.join(nm, "@vscode", "vsce", "vsce");
  const tmpOut = path.join(stage, "out.vsix");
  const r = spawnSync(
    process.execPath,
    [vsce, "package", "--no-dependencies", "--allow-missing-repository", "--skip-license", "--target", target, "--out", tmpOut],
    { cwd: stage, stdio: ["ignore", "inherit", "inherit"] },
  );
  if (r.status !== 0) fail(`vsce failed (exit ${r.status})`);
  const mb = statSync(tmpOut).size / 2 ** 20;
  if (mb > MAX_MB) fail(`${path.basename(outFile)} is ${mb.toFixed(1)} MB, over the ${MAX_MB} MB budget`);
  // Atomic: copy beside the destination, then rename (the stage may be on another filesystem).
  cpSync(tmpOut, `${outFile}.tmp`);
  renameSync(`${outFile}.tmp`, outFile);
  console.log(`package: ${path.relative(process.cwd(), outFile)} ${mb.toFixed(1)} MB (${target})`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
