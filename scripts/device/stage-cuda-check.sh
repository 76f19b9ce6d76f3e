#!/usr/bin/env bash
# Stages the CUDA check for the GPU machine (see stage.sh): .device-stage/{node.xz, ort.tar.xz, check.js}.
set -euo pipefail
exec "$(dirname "$0")/stage.sh" scripts/device/cuda-check.ts check
