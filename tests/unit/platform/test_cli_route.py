from __future__ import annotations

import io
import json

import pytest

from tierserve.platform import cli
from tierserve.platform.cli_route import parse_request


def run(monkeypatch, capsys, argv, stdin=""):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = cli.main(argv)
    return code, capsys.readouterr().out


def test_route_jsonl_in_jsonl_out(monkeypatch, capsys):
    lines = "\n".join([
        json.dumps({"messages": [{"role": "user", "content": "What is the capital of Peru?"}]}),
        json.dumps({"messages": [{"role": "user", "content": "Prove that e is irrational."}],
                    "latency_critical": True}),
        json.dumps({"messages": [{"role": "user", "content": "x"}], "model": "33b"}),
    ])
    code, out = run(monkeypatch, capsys, ["route"], lines)
    rows = [json.loads(x) for x in out.splitlines()]
    assert code == 0 and [r["tier"] for r in rows] == ["7b", "236b", "33b"]
    for r in rows:
        assert {"tier", "deployment", "reason", "scores", "confidence"} <= set(r)
    assert rows[1]["reason"].endswith(";latency:critical")
    assert rows[2]["reason"] == "pinned:tier"


def test_route_reports_bad_lines_and_goes_on(monkeypatch, capsys):
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    code, out = run(monkeypatch, capsys, ["route"], f"{{oops\n{good}\n[1]\n")
    rows = [json.loads(x) for x in out.splitlines()]
    assert code == 1
    assert "not valid JSON" in rows[0]["error"] and rows[1]["tier"] == "7b"
    assert "JSON object" in rows[2]["error"]


def test_route_explain(monkeypatch, capsys):
    code, out = run(monkeypatch, capsys,
                    ["route", "--explain", "--text", "设计一个分布式缓存的一致性哈希方案"])
    assert code == 0
    assert "tier       236b" in out and "reason     rules:reasoning" in out and "design" in out


def test_route_unknown_classifier_is_a_config_error(monkeypatch, capsys):
    assert cli.main(["route", "--classifier", "nope", "--text", "hi"]) == 2


@pytest.mark.parametrize("line, message", [
    ('{"messages": []}', "non-empty list"),
    ('{"messages": [{"content": "x"}]}', "role"),
    ('"text"', "JSON object"),
])
def test_parse_request_errors(line, message):
    with pytest.raises(ValueError, match=message):
        parse_request(line)


def test_parse_request_accepts_a_prompt():
    assert parse_request('{"prompt": "hi"}')["messages"] == [{"role": "user", "content": "hi"}]


def test_calibrate_rules_only_dry_run(capsys, tmp_path):
    data = tmp_path / "d.jsonl"
    rows = [("What is 2 + 2?", "7b"), ("Write a poem about rain.", "33b"),
            ("Prove that sqrt 2 is irrational.", "236b")] * 3
    data.write_text("\n".join(json.dumps({"id": str(i), "tier": t, "split": "train",
                                          "messages": [{"role": "user", "content": q}]})
                              for i, (q, t) in enumerate(rows)))
    assert cli.main(["calibrate", "--rules-only", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "rules" in out and "accuracy=100.0%" in out and "dry run" in out
