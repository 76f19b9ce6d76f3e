#!/usr/bin/env bash
# Runs a command inside the peer chroot with WORKDIR bind-mounted at /peer-work (its cwd there), and /proc + /sys
# mounted so onnxruntime sees the real CPU count; everything is unmounted on exit, even on failure or Ctrl-C.
#   bench/peer/run-in-chroot.sh WORKDIR COMMAND [ARGS...]
# Chroot location: $PTQ_PEER_CHROOT (default ~/.cache/ptq-studio-peer/trixie), built by setup-chroot.sh.
set -euo pipefail
ROOT="${PTQ_PEER_CHROOT:-$HOME/.cache/ptq-studio-peer/trixie}"
WORK="$(cd "${1:?usage: run-in-chroot.sh WORKDIR COMMAND...}" && pwd)"; shift
if [[ ! -f "$ROOT/.ptq-debootstrap-done" ]] || [[ ! -d "$ROOT/usr/lib/python3/dist-packages/onnxruntime/quantization" ]]; then
  echo "run-in-chroot.sh: no ready chroot at $ROOT; run bench/peer/setup-chroot.sh first (needs root)" >&2
  exit 3
fi
MNT="$ROOT/peer-work-$$"
mounted=()
cleanup() { local i; for (( i=${#mounted[@]}-1; i>=0; i-- )); do umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" || true; done; rmdir "$MNT" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
mkdir -p "$MNT"
mount --bind "$WORK" "$MNT"; mounted+=("$MNT")
if ! mountpoint -q "$ROOT/proc"; then mount -t proc proc "$ROOT/proc"; mounted+=("$ROOT/proc"); fi
if ! mountpoint -q "$ROOT/sys"; then mount --bind /sys "$ROOT/sys"; mounted+=("$ROOT/sys"); fi
chroot "$ROOT" /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "/peer-work-$$" "$@"
