#!/usr/bin/env bash
# The device-side half of stage.sh: unpacks the staged Node and onnxruntime-node into /tmp/ptq-check and runs the
# bundled NAME.js there with the remaining arguments (paths relative to the repository root are made absolute
# by the caller). Prints the CPU first: INT8 speed depends on VNNI/AMX.
#   scripts/device/run-staged.sh NAME [ARGS...]
set -u
cd "$(dirname "$0")/../.."
S=.device-stage
NAME=$1
shift
grep -m1 "model name" /proc/cpuinfo
grep -o -w -E "avx512_vnni|avx_vnni|amx_int8" /proc/cpuinfo | sort -u | tr '\n' ' '; echo
NODE=$(command -v node || true)
if [ -z "$NODE" ]; then
  xz -dc "$S/node.xz" > /tmp/node && chmod +x /tmp/node && NODE=/tmp/node
fi
mkdir -p /tmp/ptq-check && tar -xJf "$S/ort.tar.xz" -C /tmp/ptq-check
cp "$S/$NAME.js" "/tmp/ptq-check/$NAME.js"
cd /tmp/ptq-check && "$NODE" "$NAME.js" "$@"
