"""Schema fuzzing (schemathesis) of the whole HTTP surface, auth on, tiers on FakeEngines.

Every operation of the app's own OpenAPI document gets generated requests, valid and
invalid (positive + negative modes), sent with an admin key, an inference key, no key
or a wrong key. Every response must be 2xx or 4xx — never a 5xx, never a crash — with a
JSON body whose errors have the OpenAI shape, and a declared status and content type.
The last test checks that at least MIN_REQUESTS requests were sent.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import itertools
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tierserve.config import parse_config
from tierserve.context.conversations import ConversationService
from tierserve.context.memory import MemoryContextStore
from tierserve.context.tokens import WordTokenCounter
from tierserve.deployments.fake_engine import FakeEngine
from tierserve.deployments.tier import TierDeployment
from tierserve.router.http_app import create_app
from tierserve.router.service import RouterService
from tierserve.router.tier_client import LocalTierClient
from tierserve.security.keys import generate_key, key_entry

from tests.unit.conftest import small_config

MIN_REQUESTS = 1000
EXAMPLES_PER_OPERATION = 250
KEYS = {"admin": generate_key(), "inference": generate_key()}
# Mostly authenticated, so the generated bodies reach the handlers behind the gate.
IDENTITIES = itertools.cycle(["admin", "inference", "admin", "inference", "none", "wrong"])
# Random model names would almost all be 404s: most bodies get a served model, so the
# rest of each generated body reaches the classifier, the engines and the conversations.
MODELS = itertools.cycle(["auto", "7b", "33b", "236b", "small-int8", None])
SEEN: collections.Counter = collections.Counter()


def build_app(audit_path: str):
    entries = [key_entry("fuzz-admin", "admin", KEYS["admin"]).model_dump(),
               key_entry("fuzz-app", "inference", KEYS["inference"]).model_dump()]
    config = parse_config(small_config(
        router={"max_request_bytes": 64 << 10, "max_completion_tokens": 64},
        security={"auth": "required", "api_keys": entries,
                  "rate_limits": {"enabled": False}, "audit": {"path": audit_path}}))
    tiers = {}
    for tier, v in config.variants():
        dep = TierDeployment(tier.id, v.name, {"max_model_len": v.max_model_len},
                             engine_factory=lambda name, a: FakeEngine(name, a["max_model_len"]))
        asyncio.run(dep.start())
        tiers[v.name] = dep
    counter = WordTokenCounter()
    conversations = ConversationService(
        MemoryContextStore(config.context.max_turns, config.context.ttl_s),
        {v.name: counter for _, v in config.variants()},
        {v.name: v.max_model_len for _, v in config.variants()}, config.context)
    return create_app(RouterService(config, LocalTierClient(tiers), conversations))


def headers_for(identity: str) -> dict[str, str]:
    if identity == "none":
        return {}
    key = KEYS.get(identity, "ts-wrong-key-0000000000000000")
    return {"authorization": f"Bearer {key}"}


def check_openai_errors(ctx, response, case):
    """2xx/4xx only; every 4xx carries {"error": {message, type, param, code}}."""
    assert 200 <= response.status_code < 500, f"status {response.status_code}"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert {"message", "type", "param", "code"} <= set(error), error
        assert error["message"] and "Traceback" not in error["message"]
    return True


WORKDIR = tempfile.mkdtemp(prefix="tierserve-fuzz-")
atexit.register(shutil.rmtree, WORKDIR, True)
APP = build_app(str(Path(WORKDIR) / "audit.jsonl"))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                with_security_parameters=False)  # identities are ours
CHECKS = [not_a_server_error, check_openai_errors, status_code_conformance,
          content_type_conformance, response_schema_conformance]


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_fuzz_operation(case):
    identity = next(IDENTITIES)
    # Our identity replaces any Authorization header the generator made up.
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    model = next(MODELS)
    if model is not None and isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = model
    response = case.call(headers=headers_for(identity))
    SEEN["requests"] += 1
    SEEN[response.status_code] += 1
    case.validate_response(response, checks=CHECKS)


def test_fuzz_sent_enough_requests():
    print(f"\nfuzz: {SEEN['requests']} requests; status counts "
          f"{sorted((k, v) for k, v in SEEN.items() if k != 'requests')}")
    assert SEEN["requests"] >= MIN_REQUESTS
    assert not [code for code in SEEN if isinstance(code, int) and code >= 500]
    assert SEEN[200] > 100 and SEEN[401] > 50 and SEEN[400] > 50
