"""The local Ray node a benchmark runs the platform on, started as `tierserve up` would."""

from __future__ import annotations

import os

from tierserve.deployments.node_env import apply_serving_node_env


def start_local_ray(serve_mode: str = "standard", num_cpus: int = 2) -> None:
    """A quiet local Ray node (no dashboard, replica logs not streamed here) with the
    serving node environment and the chosen Ray Serve data-path mode."""
    import ray

    from tierserve.platform.local import serve_mode_env

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind to loopback
    os.environ.update(serve_mode_env(serve_mode))
    apply_serving_node_env()
    ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING",
             log_to_driver=False)
