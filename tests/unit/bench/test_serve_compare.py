"""`bench serve` bookkeeping: load points and the per-round ratios with the A/A control."""

from __future__ import annotations

import pytest

from tierserve.bench.serve import LoadPoint, compare


def run(tput: float, ttft: float, tpot: float) -> dict:
    return {"output_tokens_per_s": tput, "ttft_ms": {"p50": ttft}, "tpot_ms": {"p50": tpot}}


def test_ratios_use_the_mean_of_the_two_baseline_runs():
    rounds = [{"bare": run(100, 50, 10), "bare2": run(110, 60, 10),
               "pinned": run(94.5, 58, 11), "auto": run(84, 75, 12)}]
    out = compare(rounds)
    assert out["pinned"]["throughput_ratio"]["median"] == pytest.approx(0.9)
    assert out["pinned"]["ttft_p50_added_ms"]["median"] == pytest.approx(3.0)
    assert out["auto"]["tpot_p50_ratio"]["median"] == pytest.approx(1.2)
    assert out["aa_control"]["throughput_ratio"]["median"] == pytest.approx(1.1)
    assert out["aa_control"]["ttft_p50_delta_ms"]["median"] == pytest.approx(10.0)


def test_median_and_spread_over_rounds():
    rounds = [{"bare": run(100, 0, 1), "bare2": run(100, 0, 1), "pinned": run(p, 0, 1),
               "auto": run(100, 0, 1)} for p in (90, 99, 95)]
    block = compare(rounds)["pinned"]["throughput_ratio"]
    assert (block["median"], block["min"], block["max"]) == pytest.approx((0.95, 0.9, 0.99))


def test_load_points():
    closed, poisson = LoadPoint(concurrency=16), LoadPoint(rate_per_s=0.5)
    assert (closed.key, poisson.key) == ("16", "poisson0.5")
    assert closed.requests(8) == 32 and poisson.requests(8) == 8


def test_cpu_per_token_pools_the_baseline_runs_and_drops_idle_roles():
    def with_cpu(per_token: dict) -> dict:
        return {**run(100, 0, 1), "cpu": {"cpu_ms_per_output_token": per_token}}

    rounds = [{"bare": with_cpu({"engine": 10.0, "idle": 0.0}),
               "bare2": with_cpu({"engine": 12.0, "idle": 0.0}),
               "pinned": with_cpu({"engine": 11.0, "router": 2.0}),
               "auto": with_cpu({"engine": 11.0, "router": None})}]
    table = compare(rounds)["cpu_ms_per_output_token"]
    assert table["bare"] == {"engine": 11.0}
    assert table["pinned"] == {"engine": 11.0, "router": 2.0}
    assert table["auto"] == {"engine": 11.0}


def test_paired_ttft_report_differences_per_prompt():
    from tierserve.bench.ttft_probe import paired_report

    ttft = {"bare": [100.0, 200.0, 300.0, 400.0], "pinned": [104.0, 205.0, None, 403.0],
            "bare2": [101.0, 199.0, 300.0, 400.0]}
    out = paired_report(ttft, "bare", "bare2")
    assert out["pinned"]["added_ms"]["median"] == 4.0
    assert out["pinned"]["added_ms"]["pairs"] == 3 and out["pinned"]["errors"] == 1
    assert out["aa_control"]["added_ms"]["median"] == 0.0
    assert "added_ms" not in out["bare"]


def test_fresh_prompts_are_unique_and_keep_the_text():
    from tierserve.bench.loadgen import fresh_prompts

    tagged = fresh_prompts(["a", "b"], 5)
    assert len(set(tagged)) == 5
    assert [t.split("] ", 1)[1] for t in tagged] == ["a", "b", "a", "b", "a"]
    assert fresh_prompts(["a"], 1) != fresh_prompts(["a"], 1)


def test_the_peer_is_compared_when_it_ran():
    rounds = [{"bare": run(100, 50, 10), "bare2": run(100, 50, 10), "pinned": run(95, 55, 10),
               "auto": run(95, 55, 10), "peer": run(86, 98, 12)}]
    out = compare(rounds)
    assert out["peer"]["throughput_ratio"]["median"] == pytest.approx(0.86)
    assert out["peer"]["ttft_p50_added_ms"]["median"] == pytest.approx(48.0)
    assert "peer" not in compare([{k: v for k, v in rounds[0].items() if k != "peer"}])


def test_rotated_changes_who_goes_first():
    from tierserve.bench.loadgen import rotated

    assert [rotated(["a", "b", "c"], k) for k in (0, 1, 5)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]


@pytest.mark.parametrize("concurrency, rates", [("0", ""), ("4,-1", ""), ("", "0"), ("", "")])
def test_load_levels_must_be_positive(concurrency, rates):
    import argparse

    from tierserve.platform.cli_bench import _load_points

    with pytest.raises(SystemExit, match="positive load levels"):
        _load_points(argparse.Namespace(concurrency=concurrency, rates=rates))


def test_load_levels_parse_closed_and_open_loop():
    import argparse

    from tierserve.platform.cli_bench import _load_points

    points = _load_points(argparse.Namespace(concurrency="1,16", rates="0.5"))
    assert [p.key for p in points] == ["1", "16", "poisson0.5"]


def test_a_poisson_only_result_has_no_plot(tmp_path):
    from tierserve.bench.plot import plot_serve

    assert plot_serve({"concurrency": {}, "poisson": {}}, tmp_path / "x.png") is False
    assert not (tmp_path / "x.png").exists()
