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


@pytest.fixture
def redis_server(tmp_path):
    """A fresh real redis-server for one test (port chosen at random)."""
    from tests.fixtures.redis_server import start_redis

    server = start_redis(tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def session_redis(tmp_path_factory):
    """One real redis-server shared by a whole test session."""
    from tests.fixtures.redis_server import start_redis

    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()
