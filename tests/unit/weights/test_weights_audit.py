import json
import multiprocessing

import pytest

from tierserve.weights.audit import AuditLog, read_audit


def _write_many(path, worker):
    log = AuditLog(path)
    for i in range(50):
        log.record("reload", actor=f"w{worker}", result="ok", track="7b", version=i,
                   detail="x" * 2000)


def test_records_say_who_what_when_and_result(tmp_path):
    log = AuditLog(tmp_path / "sub" / "audit.jsonl")
    entry = log.record("publish", actor="alice@host", result="ok", track="7b", version=3,
                       model_id="m")
    assert entry["event"] == "publish" and entry["actor"] == "alice@host"
    assert entry["ts"].endswith("+00:00") and entry["unix"] > 0 and entry["version"] == 3
    with pytest.raises(ValueError):
        log.record("publish", actor="a", result="maybe", track="7b", version=1)
    assert read_audit(log.path) == [entry]


def test_concurrent_processes_append_whole_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    procs = [multiprocessing.get_context("fork").Process(target=_write_many, args=(path, w))
             for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 200
    assert all(json.loads(line)["detail"] == "x" * 2000 for line in lines)


def test_a_torn_last_line_is_skipped_and_appends_continue(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.record("publish", actor="a", result="ok", track="7b", version=1)
    with open(path, "a") as f:
        f.write('{"event": "reload", "act')
    assert len(read_audit(path)) == 1
    log.record("publish", actor="a", result="ok", track="7b", version=2)
    assert [r["version"] for r in read_audit(path)] == [1, 2]
    assert read_audit(tmp_path / "none.jsonl") == []
