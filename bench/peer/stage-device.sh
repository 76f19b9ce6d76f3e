#!/usr/bin/env bash
# Stages a peer-comparison run for the lent device machine (a quiet 16-core Xeon; it has no npm, no chroot, no
# network): this machine's Node, onnxruntime-node's linux-x64 binaries, our CLI (out/cli.js), compare.ts bundled,
# and ONNX Runtime's quantized models from an earlier `compare.ts --keep DIR` run (they do not depend on the CPU).
#   npm run build && bench/peer/stage-device.sh KEEP_DIR      → .peer-stage/ (ignored via .git/info/exclude)
# then on the device: bench/peer/run-device.sh [compare.ts options]
set -euo pipefail
KEEP="$(cd "${1:?usage: stage-device.sh KEEP_DIR (from compare.ts --keep)}" && pwd)"
cd "$(dirname "$0")/../.."
S=.peer-stage
grep -qx '/.peer-stage/' .git/info/exclude 2>/dev/null || echo '/.peer-stage/' >> .git/info/exclude
rm -rf "$S" && mkdir -p "$S/ort"
# Node and onnxruntime-node are packed by the CUDA check's staging script (one packer for every device run);
# PTQ_PEER_RESTAGE=1 repacks them, e.g. after an onnxruntime-node upgrade.
if [[ "${PTQ_PEER_RESTAGE:-}" == 1 || ! -f .device-stage/node.xz || ! -f .device-stage/ort.tar.xz ]]; then
  scripts/device/stage-cuda-check.sh
fi
cp .device-stage/node.xz .device-stage/ort.tar.xz "$S/"
cp out/cli.js "$S/cli.js"
npx esbuild bench/peer/compare.ts --bundle --platform=node --format=cjs --target=node20 --external:onnxruntime-node --outfile="$S/compare.js" --log-level=warning
# Only the quantized models and their records: no .pre.onnx leftovers, logs or inputs.
for d in "$KEEP"/*/; do
  [[ -f "$d/ort-records.json" ]] || continue
  m="$(basename "$d")"; mkdir -p "$S/ort/$m"
  cp "$d/ort-records.json" "$d"/*.ort-*.onnx "$S/ort/$m/"
  for f in "$d"/*.onnx; do  # the FP32 snapshot too, so compare.ts can check it is the same model
    case "$f" in *.ort-*|*.ours.onnx|*.pre.onnx) ;; *) cp "$f" "$S/ort/$m/" ;; esac
  done
done
du -sh "$S"/* "$S/ort"/*
