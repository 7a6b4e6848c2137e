"""The audit log: fsync'd hash-chained JSONL, concurrent writers, the Redis stream."""

from __future__ import annotations

import json
import multiprocessing

from tierserve.security.audit import AuditEvent, AuditLog, verify_chain


def event(n: int = 0, **extra) -> AuditEvent:
    return AuditEvent(actor="ops", action="DELETE /admin/conversations/app/c1", result="200",
                      role="admin", target=f"c{n}", source="10.0.0.1", **extra)


def test_records_are_chained_and_verifiable(tmp_path):
    log = AuditLog(tmp_path / "a" / "audit.jsonl", clock=lambda: 1700000000.5)
    first = log.append(event(1))
    second = log.append(event(2, detail={"reason": "x"}))
    assert first["prev"] == "" and len(second["prev"]) == 64
    assert (first["actor"], first["action"], first["result"], first["at"]) == (
        "ops", "DELETE /admin/conversations/app/c1", "200", 1700000000.5)
    assert [r["target"] for r in log.tail()] == ["c1", "c2"]
    assert verify_chain(log.path).intact and verify_chain(log.path).records == 2
    assert (log.path.stat().st_mode & 0o777) == 0o600


def test_an_edited_or_deleted_line_breaks_the_chain(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    for n in range(4):
        log.append(event(n))
    lines = log.path.read_text().splitlines()
    edited = lines[:]
    edited[1] = edited[1].replace('"result": "200"', '"result": "403"')
    log.path.write_text("\n".join(edited) + "\n")
    report = verify_chain(log.path)
    assert not report.intact and report.broken_at == 3 and report.records == 2
    log.path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    assert verify_chain(log.path).broken_at == 2


def _writer(path: str, worker: int) -> None:
    log = AuditLog(path)
    for n in range(25):
        log.append(event(worker * 100 + n))


def test_concurrent_writers_keep_one_intact_chain(tmp_path):
    path = str(tmp_path / "audit.jsonl")
    procs = [multiprocessing.get_context("fork").Process(target=_writer, args=(path, w))
             for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    report = verify_chain(path)
    assert report.intact and report.records == 100


async def test_records_reach_the_redis_stream(tmp_path, redis_server):
    import redis

    log = AuditLog(tmp_path / "audit.jsonl", redis_server.url, stream="t:audit")
    try:
        await log.record(event(1))
        log.record_sync(event(2))
    finally:
        await log.close()
    entries = redis.Redis.from_url(redis_server.url).xrange("t:audit")
    targets = [json.loads(fields[b"record"])["target"] for _, fields in entries]
    assert targets == ["c1", "c2"]


async def test_redis_down_still_writes_the_file(tmp_path, redis_server):
    log = AuditLog(tmp_path / "audit.jsonl", redis_server.url, stream="t:audit")
    redis_server.kill()
    try:
        record = await log.record(event(1))
    finally:
        await log.close()
    assert log.redis_errors_total == 1 and record["target"] == "c1"
    assert [r["target"] for r in log.tail()] == ["c1"]


async def test_unwritable_file_is_counted_not_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = AuditLog(blocker / "audit.jsonl")  # parent is a file: cannot create
    record = await log.record(event(1))
    assert log.file_errors_total == 1 and record["actor"] == "ops"


def test_a_torn_last_line_is_never_glued_to_the_next_record(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append(event(1))
    with open(log.path, "ab") as handle:
        handle.write(b'{"actor": "half-writ')  # a writer killed mid-line
    log.append(event(2))
    lines = log.path.read_text().splitlines()
    assert lines[1] == '{"actor": "half-writ' and json.loads(lines[2])["target"] == "c2"
    assert verify_chain(log.path).broken_at == 2  # the crash stays visible


def test_weight_publish_and_reload_records_reach_the_same_stream(tmp_path, redis_server):
    import redis

    from tierserve.weights.audit import AuditLog as WeightsAudit

    def streamed() -> list[int]:
        entries = redis.Redis.from_url(redis_server.url).xrange("tierserve:audit")
        return [json.loads(fields[b"record"])["version"] for _, fields in entries]

    log = WeightsAudit(tmp_path / "weights-audit.jsonl", redis_server.url)
    log.record("publish", actor="ops@host", result="ok", track="7b", version=3)
    assert streamed() == [3]
    redis_server.kill()
    log.record("reload", actor="replica", result="refused", track="7b", version=4)  # file only
    redis_server.start()  # an empty server (no persistence in tests)
    log.record("reload", actor="replica", result="ok", track="7b", version=5)
    assert streamed() == [5]
    assert [r["version"] for r in map(json.loads, log.path.read_text().splitlines())] == [3, 4, 5]
