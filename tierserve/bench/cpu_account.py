"""Where the CPU goes during a benchmark run: CPU seconds per process role.

On a machine where the engine computes on the CPU, every CPU-second the serving stack
spends is taken from the engine, so "what costs time" is answered by accounting each
process's CPU time (user + system, from the kernel) over a run, grouped by role: bare
vLLM's API server and engine core, the platform's proxy, router, tier replica and its
engine core, Ray's control plane, the load generator, and everything else on the host.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psutil

OTHER = "other processes on the host"


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    cmdline: str
    cpu_s: float


@dataclass(frozen=True)
class Roles:
    """How to recognise the processes of one benchmark."""

    bare_server_pid: int | None
    driver_pid: int
    app_name: str
    variant: str
    peer_app: str | None = None
    """Ray Serve LLM's application, when the peer runs beside the platform."""


_RAY_SYSTEM = ("gcs_server", "raylet", "dashboard", "log_monitor", "autoscaler/_private/monitor",
               "DashboardAgent", "RuntimeEnvAgent", "ServeController")


def role_of(proc: Proc, by_pid: dict[int, Proc], roles: Roles) -> str:
    """The role of one process, judged from its title and its ancestors (pure)."""
    if proc.pid == roles.driver_pid:
        return "load generator + Ray driver"
    if proc.pid == roles.bare_server_pid:
        return "bare: vLLM API server"
    if _descends_from(proc, roles.bare_server_pid, by_pid):  # EngineCore and its Workers
        return "bare: vLLM engine core"
    tier = f"ServeReplica:{roles.app_name}:{roles.variant}"
    if tier in proc.cmdline:
        return "platform: tier replica"
    if any(tier in a.cmdline for a in _ancestors(proc, by_pid)):
        return "platform: vLLM engine core"
    peer = f"ServeReplica:{roles.peer_app}:" if roles.peer_app else None
    if peer and peer in proc.cmdline:
        return "ray-serve-llm: " + ("LLM server" if "LLMServer" in proc.cmdline else "ingress")
    if peer and any(peer in a.cmdline for a in _ancestors(proc, by_pid)):
        return "ray-serve-llm: vLLM engine core"
    if f"ServeReplica:{roles.app_name}:router" in proc.cmdline:
        return "platform: router replica"
    if "ProxyActor" in proc.cmdline:
        return "platform: HTTP proxy"
    if any(mark in proc.cmdline for mark in _RAY_SYSTEM):
        return "ray: control plane"
    return OTHER


def _ancestors(proc: Proc, by_pid: dict[int, Proc]) -> Iterable[Proc]:
    seen = set()
    while proc.ppid in by_pid and proc.ppid not in seen:
        seen.add(proc.ppid)
        proc = by_pid[proc.ppid]
        yield proc


def _descends_from(proc: Proc, pid: int | None, by_pid: dict[int, Proc]) -> bool:
    return pid is not None and any(a.pid == pid for a in _ancestors(proc, by_pid))


def snapshot() -> dict[int, Proc]:
    procs = {}
    for p in psutil.process_iter(["pid", "ppid", "cmdline", "cpu_times"]):
        info = p.info
        times = info.get("cpu_times")
        if times is None:
            continue
        procs[info["pid"]] = Proc(info["pid"], info["ppid"] or 0,
                                  " ".join(info.get("cmdline") or []),
                                  times.user + times.system)
    return procs


def cpu_by_role(before: dict[int, Proc], after: dict[int, Proc], roles: Roles) -> dict[str, float]:
    """CPU seconds each role spent between two snapshots (pure). A process that started
    in between counts from zero; one that ended in between is not seen (a short run of
    a short-lived helper process is lost, which the 'other' share would show anyway)."""
    totals: dict[str, float] = {}
    for pid, proc in after.items():
        spent = proc.cpu_s - (before[pid].cpu_s if pid in before else 0.0)
        role = role_of(proc, after, roles)
        totals[role] = totals.get(role, 0.0) + max(spent, 0.0)
    return dict(sorted(totals.items()))


class CpuMeter:
    """Measures CPU seconds by role around one run (and the host's total busy time)."""

    def __init__(self, roles: Roles):
        self.roles = roles
        self._before: dict[int, Proc] = {}
        self._host_before = None

    def start(self) -> None:
        self._before, self._host_before = snapshot(), psutil.cpu_times()

    def stop(self, output_tokens: int) -> dict:
        after, host = snapshot(), psutil.cpu_times()
        by_role = cpu_by_role(self._before, after, self.roles)
        busy = _busy(host) - _busy(self._host_before)
        per_token = (lambda s: 1e3 * s / output_tokens) if output_tokens else (lambda s: None)
        return {"cpu_s": by_role, "cpu_ms_per_output_token": {k: per_token(v) for k, v in by_role.items()},
                "host_busy_cpu_s": busy}


def _busy(times) -> float:
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)
