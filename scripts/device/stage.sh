#!/usr/bin/env bash
# Stages what a device machine needs to run a TypeScript entry (it has no npm): this machine's Node binary,
# onnxruntime-node with only its linux-x64 binaries, and the entry bundled by esbuild as .device-stage/<name>.js.
#   scripts/device/stage.sh ENTRY.ts NAME      (output: .device-stage/, git-ignored, ~40 MB; carry it to the run)
set -euo pipefail
cd "$(dirname "$0")/../.."
ENTRY=$1
NAME=$2
S=.device-stage
mkdir -p "$S"
if [ ! -f "$S/ort.tar.xz" ] || [ ! -f "$S/node.xz" ]; then
  mkdir -p "$S/pkg/node_modules"
  xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > "$S/node.xz"
  cp -r node_modules/onnxruntime-common "$S/pkg/node_modules/"
  mkdir -p "$S/pkg/node_modules/onnxruntime-node/bin/napi-v6/linux"
  cp -r node_modules/onnxruntime-node/{package.json,dist,lib} "$S/pkg/node_modules/onnxruntime-node/" 2>/dev/null || true
  cp -r node_modules/onnxruntime-node/bin/napi-v6/linux/x64 "$S/pkg/node_modules/onnxruntime-node/bin/napi-v6/linux/"
  tar -cJf "$S/ort.tar.xz" -C "$S/pkg" node_modules
  rm -rf "$S/pkg"
fi
npx esbuild "$ENTRY" --bundle --platform=node --format=cjs --target=node20 --external:onnxruntime-node --outfile="$S/$NAME.js" --log-level=warning
du -sh "$S"/*
