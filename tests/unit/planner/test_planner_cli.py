"""`tierserve plan` and `tierserve config validate` through the CLI entry point."""

from __future__ import annotations

import json

from tests.unit.planner.conftest import DEEPSEEK, LOCAL
from tierserve.platform.cli import main


def test_plan_json_for_deepseek(capsys):
    assert main(["plan", "--config", str(DEEPSEEK), "--json"]) == 0
    rows = {r["deployment"]: r for r in json.loads(capsys.readouterr().out)}
    big = rows["deepseek-236b-bf16"]
    assert (big["gpus_per_replica"], big["tensor_parallel_size"],
            big["pipeline_parallel_size"]) == (8, 4, 2)
    assert big["kv_bytes_per_token"] == 69120
    assert rows["deepseek-33b-awq"]["gpus_per_replica"] == 1


def test_plan_table(capsys):
    assert main(["plan", "--config", str(DEEPSEEK)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["deployment", "tier", "prec"]
    assert "deepseek-236b-bf16" in out and "4x2" in out


def test_plan_on_a_smaller_gpu_exits_1_and_explains(capsys):
    assert main(["plan", "--config", str(DEEPSEEK), "--gpu", "l40s-48gb"]) == 1
    out = capsys.readouterr().out
    assert "cannot hold it" in out and "16 GPU(s) as TP=4 x PP=4" in out


def test_plan_local_config_plans_the_stand_ins_or_says_why(capsys):
    code = main(["plan", "--config", str(LOCAL), "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4
    planned = [r for r in rows if "error" not in r]
    assert code == (0 if len(planned) == 4 else 1)


def test_config_validate_refuses_a_placement_too_small(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEEPSEEK.read_text().replace("tensor_parallel_size: 4", "tensor_parallel_size: 2"))
    assert main(["config", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "deepseek-236b-bf16" in err and "cannot hold it" in err
