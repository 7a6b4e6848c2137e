from __future__ import annotations

import random
from pathlib import Path

import pytest

from tierserve.router.evaluation import (
    PairedItem,
    apgr,
    at_share,
    curve,
    load_gsm8k,
    load_mt_bench,
    oracle_scores,
    summary,
)
from tierserve.router.training import fit_temperature, temper

SHARED = Path(__file__).resolve().parents[4] / "shared" / "datasets"


def items(n: int = 40) -> list[PairedItem]:
    # the strong model helps exactly on the first half
    return [PairedItem(str(i), [], strong=1.0, weak=0.0 if i < n // 2 else 1.0)
            for i in range(n)]


def test_curve_runs_from_all_weak_to_all_strong_with_ties_together():
    its = items(4)
    pts = curve(its, [0.9, 0.9, 0.1, 0.1])
    assert pts == [(0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]


def test_apgr_of_oracle_random_and_inverted_routers():
    its = items()
    assert apgr(its, oracle_scores(its)) == pytest.approx(0.75, abs=1e-3)
    rng = random.Random(0)
    rand = sum(apgr(its, [rng.random() for _ in its]) for _ in range(50)) / 50
    assert 0.4 < rand < 0.6
    assert apgr(its, [-s for s in oracle_scores(its)]) == pytest.approx(0.25, abs=1e-3)


def test_at_share_reports_the_operating_point():
    its = items(4)
    assert at_share(its, [True, False, False, False]) == {
        "strong_share": 0.25, "quality": 0.75, "pgr": 0.5}


def test_temperature_softens_without_reordering():
    s = {"7b": 0.9, "33b": 0.09, "236b": 0.01}
    soft = temper(s, 2.0)
    assert soft["7b"] < 0.9 and soft["7b"] > soft["33b"] > soft["236b"]
    overconfident = [{"7b": 0.99, "33b": 0.005, "236b": 0.005}] * 7 + \
                    [{"7b": 0.005, "33b": 0.99, "236b": 0.005}] * 3
    assert fit_temperature(overconfident, ["7b"] * 5 + ["33b"] * 2 + ["7b"] * 3) > 1.5


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/datasets not beside the repo")
def test_public_sets_load_as_routellm_decontaminates_them():
    mt, gsm = load_mt_bench(SHARED), load_gsm8k(SHARED)
    assert summary(mt)["n"] == 72 and summary(gsm)["n"] == 1307
    assert summary(mt)["strong_quality"] == pytest.approx(9.212, abs=1e-3)
    assert summary(gsm)["weak_quality"] == pytest.approx(0.6373, abs=1e-3)
