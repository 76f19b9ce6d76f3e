#!/usr/bin/env bash
# Runs a command inside the peer chroot with WORKDIR bind-mounted at /peer-work (its cwd there), and /proc + /sys
# mounted so onnxruntime sees the real CPU count. The mounts live in a private mount namespace (unshare -m), so they
# vanish with the command, whatever way it ends, and two runs at once cannot unmount each other's /proc.
#   bench/peer/run-in-chroot.sh WORKDIR COMMAND [ARGS...]
# Chroot location: $PTQ_PEER_CHROOT (default ~/.cache/ptq-studio-peer/trixie), built by setup-chroot.sh.
set -euo pipefail
ROOT="${PTQ_PEER_CHROOT:-$HOME/.cache/ptq-studio-peer/trixie}"
WORK="$(cd "${1:?usage: run-in-chroot.sh WORKDIR COMMAND...}" && pwd)"; shift
if [[ ! -f "$ROOT/.ptq-debootstrap-done" ]] || [[ ! -d "$ROOT/usr/lib/python3/dist-packages/onnxruntime/quantization" ]]; then
  echo "run-in-chroot.sh: no ready chroot at $ROOT; run bench/peer/setup-chroot.sh first (needs root)" >&2
  exit 3
fi
if [[ "${PTQ_PEER_IN_NS:-}" != 1 ]]; then
  PTQ_PEER_IN_NS=1 PTQ_PEER_CHROOT="$ROOT" exec unshare --mount --propagation private "$0" "$WORK" "$@"
fi
mkdir -p "$ROOT/peer-work"
mount --bind "$WORK" "$ROOT/peer-work"
mount -t proc proc "$ROOT/proc"
mount --bind /sys "$ROOT/sys"
exec chroot "$ROOT" /bin/sh -c 'cd /peer-work && exec "$@"' sh "$@"
