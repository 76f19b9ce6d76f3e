#!/usr/bin/env bash
# Builds (once) a Debian trixie chroot holding ONNX Runtime's Python quantizer
# (python3-onnxruntime 1.21), because PyPI is unreachable and bookworm does not package it.
# Idempotent: re-running only installs what is missing. Needs root (debootstrap, chroot).
#   bench/peer/setup-chroot.sh [CHROOT_DIR]   (default ~/.cache/ptq-studio-peer/trixie)
set -euo pipefail

ROOT="${1:-${PTQ_PEER_CHROOT:-$HOME/.cache/ptq-studio-peer/trixie}}"
# Same mirror this machine's apt already uses, so no new network endpoint is needed.
MIRROR="${PTQ_PEER_MIRROR:-$(grep -rhoE '^(URIs:|deb) +https?://[^ ]*debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
  | grep -oE 'https?://[^ ]+' | head -1 || true)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
PKGS=(python3-onnxruntime python3-numpy python3-onnx)

if [[ $EUID -ne 0 ]]; then echo "setup-chroot.sh: needs root (debootstrap and chroot)" >&2; exit 1; fi
command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap; }

if [[ ! -x "$ROOT/usr/bin/apt-get" || ! -f "$ROOT/.ptq-debootstrap-done" ]]; then
  echo "debootstrap trixie into $ROOT from $MIRROR"
  mkdir -p "$ROOT"
  debootstrap --variant=minbase trixie "$ROOT" "$MIRROR"
  touch "$ROOT/.ptq-debootstrap-done"
fi

# /proc is needed by apt/dpkg maintainer scripts; unmount on exit so the host stays clean.
mounted=0
cleanup() { if [[ $mounted -eq 1 ]]; then umount "$ROOT/proc" || true; fi; }
trap cleanup EXIT
if ! mountpoint -q "$ROOT/proc"; then mount -t proc proc "$ROOT/proc"; mounted=1; fi

missing=()
for p in "${PKGS[@]}"; do
  chroot "$ROOT" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  chroot "$ROOT" apt-get clean
fi

# onnx.reference must be imported before onnxruntime (known quirk of this Debian build).
chroot "$ROOT" python3 -c 'import onnx.reference, onnxruntime, numpy, onnx; from onnxruntime.quantization import quantize_static; print("onnxruntime", onnxruntime.__version__, "onnx", onnx.__version__, "numpy", numpy.__version__)'
echo "chroot ready: $ROOT"
