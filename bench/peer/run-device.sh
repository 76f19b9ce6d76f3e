#!/usr/bin/env bash
# Device half of the peer comparison (see stage-device.sh): unpacks Node and onnxruntime-node, puts our CLI where
# bin/ptq.js looks, and runs the bundled compare.ts over the staged ONNX Runtime models. Results go to $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
S=.peer-stage
NODE="$(command -v node || true)"
if [[ -z "$NODE" ]]; then xz -dc "$S/node.xz" > /tmp/node && chmod +x /tmp/node && NODE=/tmp/node; fi
[[ -d node_modules/onnxruntime-node ]] || tar -xJf "$S/ort.tar.xz" -C .
mkdir -p out && cp "$S/cli.js" out/cli.js
lscpu | grep -E "Model name|^CPU\(s\)|Flags" | sed -E 's/(Flags:).*(avx512_vnni|amx_int8).*/\1 ... \2 .../' | head -3
grep -o -w -E "avx512_vnni|avx_vnni|amx_int8" /proc/cpuinfo | sort -u | tr '\n' ' '; echo
uptime
OUTDIR="${OUT:-/tmp/peer-out}"; mkdir -p "$OUTDIR"
PATH="$(dirname "$NODE"):$PATH" PTQ_PEER_REPO="$PWD" "$NODE" "$S/compare.js" --from "$S/ort" --json "$OUTDIR/peer.json" "$@" | tee "$OUTDIR/peer.md"
