"""`tierserve route`: route requests offline (no Ray, no vLLM) and explain decisions.

    echo '{"messages": [{"role": "user", "content": "Prove that e is irrational."}]}' \\
      | tierserve route --classifier cascade
    tierserve route --explain --text "Design a distributed rate limiter"
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator

from tierserve.platform.settings import DEFAULT_CONFIG


def register(sub) -> None:
    p = sub.add_parser(
        "route", help="route JSONL requests from stdin to tiers (no Ray/vLLM needed)",
        description="Reads one JSON object per line ({messages, latency_critical?, model?}) "
        "and writes one JSON line per input: tier, deployment, reason, scores, confidence "
        "(or error). --explain pretty-prints each decision instead.",
    )
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="tierserve YAML config")
    p.add_argument("--classifier", default=None,
                   help="override routing.classifier (rules | embedding | cascade)")
    p.add_argument("--explain", action="store_true", help="pretty-print the decision(s)")
    p.add_argument("--text", default=None,
                   help="route this one user message instead of reading stdin")
    p.set_defaults(func=_route)


def parse_request(line: str) -> dict:
    """One input line → {messages, latency_critical, model}; ValueError with a clear text."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON: {err.msg}") from None
    if not isinstance(item, dict):
        raise ValueError("each line must be a JSON object")
    messages = item.get("messages")
    if messages is None and isinstance(item.get("prompt"), str):
        messages = [{"role": "user", "content": item["prompt"]}]
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list of {role, content}")
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or "content" not in m:
            raise ValueError("each message needs a string 'role' and a 'content'")
    return {"messages": messages, "latency_critical": bool(item.get("latency_critical", False)),
            "model": str(item.get("model", "auto"))}


def route_one(config, classifier, number: int, line: str) -> tuple[dict, list[dict]]:
    """The output object for one input line, and the messages it carried."""
    from tierserve.errors import TierServeError
    from tierserve.router.decision import decide

    try:
        req = parse_request(line)
        decision = decide(config, classifier, req["model"], req["messages"],
                          req["latency_critical"])
        return {"line": number, **decision.as_dict()}, req["messages"]
    except (ValueError, TierServeError) as err:
        return {"line": number, "error": str(err)}, []


def route_lines(config, classifier, lines: Iterable[str]) -> Iterator[tuple[dict, list[dict]]]:
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield route_one(config, classifier, number, line)


def explain(config, classifier, result: dict, messages: list[dict]) -> str:
    """A human-readable account of one decision."""
    from tierserve.router import features as feat

    if "error" in result:
        return f"line {result['line']}: error: {result['error']}"
    text = feat.last_user_text(messages)
    f = feat.extract(messages)
    cues = {k: v for k, v in zip(feat.Features.names(), (getattr(f, n) for n in
            feat.Features.names()), strict=True) if v}
    lines = [
        f"request    {text[:100]!r}{'...' if len(text) > 100 else ''}",
        f"turns      {f.user_turns} user / {f.assistant_turns} assistant",
        f"classifier {_settings(classifier)}",
        f"tier       {result['tier']}  ->  deployment {result['deployment']}",
        f"confidence {result['confidence']:.2f}",
        f"reason     {result['reason']}",
        "scores",
    ]
    for tier, score in result.get("scores", {}).items():
        lines.append(f"  {tier:>5} {score:6.3f} {'#' * round(score * 40)}")
    lines.append(f"features   {cues}")
    return "\n".join(lines)


def _settings(classifier) -> str:
    if hasattr(classifier, "gate"):  # the cascade: its stages' thresholds and the gate
        return (f"cascade  gate {classifier.gate}  rules {classifier.rules.thresholds.as_dict()}"
                f"  embedding {classifier.embedding.thresholds.as_dict()}")
    return f"{classifier.name}  thresholds {classifier.thresholds.as_dict()}"


def _route(args: argparse.Namespace) -> int:
    from tierserve.config import load_config
    from tierserve.router.classifiers import classifier_from_config

    config = load_config(args.config)
    routing = config.routing
    if args.classifier:
        routing = routing.model_copy(update={"classifier": args.classifier})
    classifier = classifier_from_config(routing)
    if args.text is not None:
        lines = [json.dumps({"messages": [{"role": "user", "content": args.text}]})]
    else:
        lines = sys.stdin
    failed = False
    for result, messages in route_lines(config, classifier, lines):
        failed |= "error" in result
        if args.explain:
            print(explain(config, classifier, result, messages) + "\n")
        else:
            print(json.dumps(result, ensure_ascii=False), flush=True)
    return 1 if failed else 0
