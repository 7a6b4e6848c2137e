"""One trace per request: router steps, dispatch, tier generation and engine generation,
linked parent to child, with the route and token attributes."""

from __future__ import annotations

import json


def chat(content="What is the capital of France?", **extra):
    return {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}


def by_name(spans):
    found = {}
    for span in spans.get_finished_spans():
        found.setdefault(span.name, []).append(span)
    return found


def parent_of(span):
    return span.parent.span_id if span.parent is not None else None


async def test_conversation_request_is_one_linked_trace(traced, spans):
    r = await traced.post("/v1/chat/completions", json=chat(conversation_id="c1"))
    assert r.status_code == 200, r.text
    named = by_name(spans)
    for name in ("router.request", "router.auth", "router.context.load", "router.classify",
                 "router.context.trim", "router.dispatch", "tier.generate", "engine.generate"):
        assert len(named.get(name, [])) == 1, (name, sorted(named))
    one = {name: found[0] for name, found in named.items()}
    root = one["router.request"]
    assert root.parent is None
    assert len({s.context.trace_id for s in one.values()}) == 1
    for step in ("router.auth", "router.context.load", "router.classify", "router.context.trim",
                 "router.dispatch"):
        assert parent_of(one[step]) == root.context.span_id, step
    assert parent_of(one["tier.generate"]) == one["router.dispatch"].context.span_id
    assert parent_of(one["engine.generate"]) == one["tier.generate"].context.span_id
    assert one["router.request"].resource.attributes["tierserve.component"] == "router"
    assert one["tier.generate"].resource.attributes["tierserve.component"] == "tier"


async def test_root_span_carries_route_tokens_and_ttft(traced, spans):
    r = await traced.post("/v1/chat/completions", json=chat())
    usage = r.json()["usage"]
    root = by_name(spans)["router.request"][0]
    attrs = root.attributes
    assert attrs["tierserve.tier"] == r.headers["x-tierserve-tier"]
    assert attrs["tierserve.deployment"] == r.headers["x-tierserve-deployment"]
    assert attrs["tierserve.route_reason"] == r.headers["x-tierserve-route-reason"]
    assert attrs["tierserve.request_id"] == r.headers["x-request-id"]
    assert attrs["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert 0 <= attrs["tierserve.ttft_s"] < 5
    assert attrs["http.response.status_code"] == 200
    engine = by_name(spans)["engine.generate"][0].attributes
    assert engine["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert engine["tierserve.outcome"] == "finished"


async def test_streamed_request_ends_its_spans_after_the_stream(traced, spans):
    r = await traced.post("/v1/chat/completions", json=chat(stream=True))
    assert r.text.endswith("data: [DONE]\n\n")
    named = by_name(spans)
    root, engine = named["router.request"][0], named["engine.generate"][0]
    assert root.end_time >= engine.end_time
    assert root.attributes["gen_ai.usage.output_tokens"] > 1


async def test_completions_endpoint_is_traced(traced, spans):
    r = await traced.post("/v1/completions", json={"model": "7b", "prompt": "hello there"})
    assert r.status_code == 200
    root = by_name(spans)["router.request"][0]
    assert root.attributes["tierserve.endpoint"] == "completions"
    assert "tier.generate" in by_name(spans)


async def test_failed_request_records_status_without_dispatch(traced, spans):
    r = await traced.post("/v1/chat/completions", json={**chat(), "model": "no-such-model"})
    assert r.status_code == 404
    named = by_name(spans)
    assert named["router.request"][0].attributes["http.response.status_code"] == 404
    assert "router.dispatch" not in named and "tier.generate" not in named
    assert named["router.classify"][0].status.status_code.name == "ERROR"


async def test_request_log_line_has_ids(traced, spans, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="tierserve.requests"):
        r = await traced.post("/v1/chat/completions", json=chat())
    record = next(rec for rec in caplog.records if rec.name == "tierserve.requests")
    fields = record.fields
    root = by_name(spans)["router.request"][0]
    assert fields["request_id"] == r.headers["x-request-id"]
    assert fields["trace_id"] == format(root.context.trace_id, "032x")
    assert fields["status"] == 200 and fields["completion_tokens"] > 0
    json.dumps(fields)


async def test_log_lines_while_serving_carry_the_root_span(traced, spans, caplog):
    import logging

    from tierserve.observability.logging import current_request

    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(current_request())
    logger = logging.getLogger("tierserve.requests")
    logger.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="tierserve.requests"):
            r = await traced.post("/v1/chat/completions", json=chat())
    finally:
        logger.removeHandler(handler)
    root = by_name(spans)["router.request"][0]
    auth = by_name(spans)["router.auth"][0]
    assert seen and seen[-1].request_id == r.headers["x-request-id"]
    assert seen[-1].trace_id == format(root.context.trace_id, "032x")
    # here the tier runs in the router's task (LocalTierClient), so its span may be current
    ids = {format(s.context.span_id, "016x") for s in spans.get_finished_spans()}
    assert seen[-1].span_id in ids
    assert auth.start_time == root.start_time
