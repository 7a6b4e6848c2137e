"""Run the platform on a local Ray cluster (or join RAY_ADDRESS): `tierserve up` / `status`."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

from tierserve.config import TierServeConfig
from tierserve.deployments.node_env import apply_serving_node_env
from tierserve.errors import ConfigError
from tierserve.platform.settings import Settings

POLL_S = 2.0


@dataclass
class DeploymentState:
    name: str
    status: str
    replicas: dict[str, int]
    message: str = ""


SERVE_MODES = {
    "standard": {},
    # Ray Serve's throughput-optimized preset: the ingress replica serves HTTP itself (no
    # proxy hop), handles talk gRPC, user code and the router share the replica's loop.
    "throughput": {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"},
}


def serve_mode_env(mode: str) -> dict[str, str]:
    """Environment that selects Ray Serve's data-path mode; set before Ray starts."""
    if mode not in SERVE_MODES:
        raise ConfigError(f"unknown serve mode '{mode}'; choose one of {sorted(SERVE_MODES)}")
    return dict(SERVE_MODES[mode])


def init_ray(settings: Settings, num_cpus: int | None = None, verbose: bool = False) -> None:
    """Join RAY_ADDRESS or start a local node. Replica logs go to the Ray dashboard and
    /tmp/ray/session_latest/logs; `verbose` also streams them to this terminal."""
    import ray

    # Bind the local node to loopback, not to a public interface.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    apply_serving_node_env()
    if settings.ray_address:
        ray.init(address=settings.ray_address, logging_level="WARNING", log_to_driver=verbose)
        return
    ray.init(
        num_cpus=num_cpus or os.cpu_count(),
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        logging_level="WARNING",
        log_to_driver=verbose,
    )


def deployment_states(app_name: str) -> tuple[str, list[DeploymentState]]:
    from ray import serve

    status = serve.status()
    app = status.applications.get(app_name)
    if app is None:
        return "NOT_DEPLOYED", []
    states = [
        DeploymentState(name, _text(d.status), {_text(k): v for k, v in d.replica_states.items()},
                        d.message)
        for name, d in sorted(app.deployments.items())
    ]
    return _text(app.status), states


def _text(value) -> str:
    """Serve's status enums are str-valued; older releases return plain strings."""
    return str(getattr(value, "value", value))


def format_states(app_status: str, states: list[DeploymentState]) -> str:
    lines = [f"application: {app_status}"]
    for s in states:
        replicas = ", ".join(f"{k.lower()}={v}" for k, v in sorted(s.replicas.items())) or "-"
        lines.append(f"  {s.name:<32} {s.status:<12} {replicas}")
        if s.message and s.status not in ("HEALTHY",):
            lines.append(f"      {s.message.strip().splitlines()[-1][:160]}")
    return "\n".join(lines)


def autoscaling_journal() -> dict[str, dict]:
    from tierserve.autoscaling.journal import read_journal

    return read_journal()


def format_autoscaling(journal: dict[str, dict]) -> str:
    if not journal:
        return "autoscaling: no decisions yet (fixed replica counts)"
    lines = ["autoscaling (queue depth):"]
    for name, entry in sorted(journal.items()):
        age = time.time() - entry["at"]
        lines.append(f"  {name:<32} current={entry['current']} target={entry['target']} "
                     f"{entry['reason']} ({age:.0f} s ago)")
        scale = entry.get("last_scale")
        if scale and scale is not entry and scale["reason"] != entry["reason"]:
            lines.append(f"  {'':<32} last change: {scale['reason']} "
                         f"({time.time() - scale['at']:.0f} s ago)")
    return "\n".join(lines)


def deploy(config: TierServeConfig, settings: Settings, app, progress=print, timeout_s=900) -> None:
    """serve.run in a thread while this one reports progress; raise if deploying fails."""
    from ray import serve

    serve.start(http_options={"host": config.server.host, "port": config.server.port})
    failure: list[BaseException] = []

    def _run() -> None:
        try:
            serve.run(app, name=config.server.app_name, route_prefix="/")
        except BaseException as err:  # surfaced in the caller's thread
            failure.append(err)

    runner = threading.Thread(target=_run, daemon=True)
    runner.start()
    begin, last = time.monotonic(), ""
    while runner.is_alive():
        runner.join(POLL_S)
        app_status, states = deployment_states(config.server.app_name)
        report = format_states(app_status, states)
        if report != last:
            progress(f"[{time.monotonic() - begin:5.0f} s] {report}")
            last = report
        if time.monotonic() - begin > timeout_s:
            raise ConfigError(f"deployment not ready after {timeout_s} s:\n{report}")
    if failure:
        raise ConfigError(f"deployment failed: {failure[0]}")


def wait_for_interrupt() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


def shutdown() -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()
