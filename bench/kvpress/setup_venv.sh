#!/usr/bin/env bash
# A benchmark-only Python environment for NVIDIA kvpress (the peer in docs/kvcache.md). Not part of scripts/setup
# and not used by CI: kvpress needs torch >= 2.3 and transformers >= 4.56, newer than the test venv (.venv: Debian
# torch 1.13, transformers 4.46). PyPI's Linux torch wheels are CUDA builds that pull the nvidia-* libraries, so the
# download is large: this script downloads first, prints the size, and installs only with --install.
# usage: bench/kvpress/setup_venv.sh [--install]     (creates .venv-kvpress and .venv-kvpress-wheels at the root)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.venv-kvpress" wheels="$root/.venv-kvpress-wheels"
spec=(kvpress==0.5.5 gguf numpy)
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip download -q -d "$wheels" "${spec[@]}"
echo "download: $(du -sh "$wheels" | cut -f1) in $(ls "$wheels" | wc -l) files ($wheels)"
ls -S "$wheels" | head -12
if [ "${1:-}" = "--install" ]; then
  "$venv/bin/python" -m pip install -q --no-index --find-links "$wheels" "${spec[@]}"
  "$venv/bin/python" -c "import torch, transformers, kvpress; print('torch', torch.__version__, 'transformers', transformers.__version__, 'kvpress', kvpress.__version__ if hasattr(kvpress, '__version__') else '0.5.5')"
fi
