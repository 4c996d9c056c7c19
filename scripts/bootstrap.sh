#!/usr/bin/env bash
# Installs what the project needs on this machine: Debian packages (when root), a .venv with CPU torch
# and the project with its dev tools. Safe to re-run; `make` calls it when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(espeak-ng chromium)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "bootstrap: installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "bootstrap: please install these Debian packages (needs root): ${missing[*]}" >&2
    fi
fi

PYTHON=${PYTHON:-}
if [[ -z $PYTHON ]]; then
    for candidate in python3.11 python3.12 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))'; then
            PYTHON=$candidate
            break
        fi
    done
fi
[[ -n $PYTHON ]] || { echo "bootstrap: Python 3.11 or 3.12 is required" >&2; exit 1; }

[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)

# torch first, so that nothing later pulls the multi-gigabyte CUDA build onto a CPU machine: the local
# 2.13.0 CPU wheel where the machine has one, else PyTorch's CPU index. GPU hosts: see README.
if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
    if ! "${PIP[@]}" install "torch==2.13.0+cpu" 2>/dev/null; then
        "${PIP[@]}" install torch --index-url https://download.pytorch.org/whl/cpu
    fi
fi
"${PIP[@]}" install -e '.[dev]'
"${PIP[@]}" install -e ./clients  # the researcher's tools, a package of their own (clients/README.md)
# librosa's numba functions compile on their first use (about 12 CPU-seconds) and numba caches them beside
# their sources: compile them here, as pip compiles bytecode, not in whichever process first calls librosa.
.venv/bin/python -c 'import numpy, librosa; librosa.stft(numpy.zeros(4000, "float32")); librosa.filters.mel(sr=16000, n_fft=512)' \
    2>/dev/null || true
echo "bootstrap: ready ($(.venv/bin/python -c 'import torch, django; print("torch", torch.__version__, "django", django.__version__)'))"
