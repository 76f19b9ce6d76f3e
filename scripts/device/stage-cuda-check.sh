#!/usr/bin/env bash
# Stages what the GPU machine needs (it has no npm): this machine's Node binary, onnxruntime-node with only its
# linux-x64 binaries, and the check bundled by esbuild. Output: .device-stage/ (git-ignored, ~40 MB).
set -euo pipefail
cd "$(dirname "$0")/../.."
S=.device-stage
rm -rf "$S" && mkdir -p "$S/pkg/node_modules"
xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > "$S/node.xz"
cp -r node_modules/onnxruntime-common "$S/pkg/node_modules/"
mkdir -p "$S/pkg/node_modules/onnxruntime-node/bin/napi-v6/linux"
cp -r node_modules/onnxruntime-node/{package.json,dist,lib} "$S/pkg/node_modules/onnxruntime-node/" 2>/dev/null || true
cp -r node_modules/onnxruntime-node/bin/napi-v6/linux/x64 "$S/pkg/node_modules/onnxruntime-node/bin/napi-v6/linux/"
tar -cJf "$S/ort.tar.xz" -C "$S/pkg" node_modules
rm -rf "$S/pkg"
npx esbuild scripts/device/cuda-check.ts --bundle --platform=node --format=cjs --target=node20 --external:onnxruntime-node --outfile="$S/check.js" --log-level=warning
du -sh "$S"/*
