"""CPU accounting by process role (pure parts: roles and differences)."""

from __future__ import annotations

import os

import pytest

from tierserve.bench.cpu_account import OTHER, CpuMeter, Proc, Roles, cpu_by_role, role_of

ROLES = Roles(bare_server_pid=100, driver_pid=1, app_name="bench", variant="bench-smol")


def procs(*rows: tuple[int, int, str, float]) -> dict[int, Proc]:
    return {pid: Proc(pid, ppid, cmd, cpu) for pid, ppid, cmd, cpu in rows}


HOST = procs(
    (1, 0, "python -m tierserve bench serve", 10.0),
    (100, 1, "python -m vllm.entrypoints.openai.api_server --model m", 5.0),
    (101, 100, "VLLM::EngineCore", 50.0),
    (102, 101, "VLLM::Worker", 50.0),
    (200, 7, "ray::ServeReplica:bench:bench-smol", 3.0),
    (201, 200, "VLLM::EngineCore", 40.0),
    (202, 201, "VLLM::Worker", 40.0),
    (300, 7, "ray::ServeReplica:bench:router", 2.0),
    (400, 7, "ray::ProxyActor", 1.0),
    (500, 1, "/venv/ray/core/src/ray/gcs/gcs_server --log_dir=x", 0.5),
    (600, 0, "sshd: someone", 9.0),
)


def test_each_process_gets_its_role_from_title_and_ancestry():
    roles = {pid: role_of(p, HOST, ROLES) for pid, p in HOST.items()}
    assert roles == {
        1: "load generator + Ray driver",
        100: "bare: vLLM API server",
        101: "bare: vLLM engine core",
        102: "bare: vLLM engine core",
        200: "platform: tier replica",
        201: "platform: vLLM engine core",
        202: "platform: vLLM engine core",
        300: "platform: router replica",
        400: "platform: HTTP proxy",
        500: "ray: control plane",
        600: OTHER,
    }


def test_an_engine_core_of_another_app_is_not_ours():
    other = procs((700, 0, "ray::ServeReplica:tierserve:smol-7b", 1.0),
                  (701, 700, "VLLM::EngineCore", 1.0))
    assert role_of(other[701], other, ROLES) == OTHER


def test_cpu_by_role_sums_differences_and_counts_new_processes_from_zero():
    later = {pid: Proc(p.pid, p.ppid, p.cmdline, p.cpu_s + 1.0) for pid, p in HOST.items()}
    later[800] = Proc(800, 7, "ray::ServeReplica:bench:router", 0.25)  # a second router
    spent = cpu_by_role(HOST, later, ROLES)
    assert spent["platform: router replica"] == 1.25
    assert spent["platform: vLLM engine core"] == 2.0
    assert spent[OTHER] == 1.0
    assert sum(spent.values()) == len(HOST) + 0.25


def test_meter_measures_this_process():
    meter = CpuMeter(Roles(None, os.getpid(), "bench", "x"))
    meter.start()
    sum(i * i for i in range(2_000_000))  # ~0.1 s: well above the 10 ms clock tick
    report = meter.stop(output_tokens=10)
    mine = report["cpu_s"]["load generator + Ray driver"]
    assert mine > 0
    assert report["cpu_ms_per_output_token"]["load generator + Ray driver"] == pytest.approx(mine * 100)
    assert report["host_busy_cpu_s"] > 0


def test_ray_serve_llm_peer_processes_have_their_own_roles():
    roles = Roles(bare_server_pid=100, driver_pid=1, app_name="bench", variant="bench-smol",
                  peer_app="rayllm")
    peer = procs((900, 7, "ray::ServeReplica:rayllm:LLMServer:bench-smol", 1.0),
                 (901, 900, "VLLM::EngineCore", 1.0),
                 (902, 7, "ray::ServeReplica:rayllm:OpenAiIngress", 1.0))
    assert [role_of(p, peer, roles) for p in peer.values()] == [
        "ray-serve-llm: LLM server", "ray-serve-llm: vLLM engine core", "ray-serve-llm: ingress"]
    assert role_of(peer[900], peer, ROLES) == OTHER  # without the peer configured
