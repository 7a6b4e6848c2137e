"""GPU layer: runs only where an NVIDIA GPU and a CUDA build of vLLM are present."""

from __future__ import annotations

import shutil

import pytest


def _gpu_ready() -> str | None:
    """None when the GPU tests can run, else why not."""
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA GPU (nvidia-smi not found)"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device (CPU build of torch/vLLM?)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _gpu_ready()
    here = str(config.rootpath / "tests" / "gpu")
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.gpu)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
