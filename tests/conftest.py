"""Shared fixtures. Layers: tests/unit (pure, fast), tests/integration (real Ray Serve,
real vLLM CPU engines, real Redis), tests/gpu (skipped without a GPU)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = str(item.fspath)
        if "/integration/" in path:
            item.add_marker(pytest.mark.integration)
        if "/gpu/" in path:
            item.add_marker(pytest.mark.gpu)
