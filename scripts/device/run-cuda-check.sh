#!/usr/bin/env bash
# The device-side half of the CUDA check: unpacks the staged Node and onnxruntime-node (linux-x64) made by
# stage-cuda-check.sh, then runs the bundled check. Prints GPU facts first.
set -u
cd "$(dirname "$0")/../.."
S=.device-stage
nvidia-smi -L 2>&1 | head -3
nvidia-smi --query-gpu=driver_version,memory.total --format=csv 2>&1 | head -2
ls -d /usr/local/cuda* 2>/dev/null | head -3
ldconfig -p 2>/dev/null | grep -E "libcudart|libcublas\.|libcudnn\." | head -5
NODE=$(command -v node || true)
if [ -z "$NODE" ]; then
  xz -dc "$S/node.xz" > /tmp/node && chmod +x /tmp/node && NODE=/tmp/node
fi
mkdir -p /tmp/ptq-check && tar -xJf "$S/ort.tar.xz" -C /tmp/ptq-check
cp "$S/check.js" /tmp/ptq-check/check.js
cd /tmp/ptq-check && "$NODE" check.js "$OLDPWD/test/fixtures/models/cnn.onnx"
