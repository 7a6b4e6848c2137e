"""The learned (embedding) classifier through HTTP on real Ray Serve + real vLLM engines.

Cheap by design: no new engines. A second Serve app, "routing" at /routing, holds only a
router ingress configured with `routing.classifier: embedding`, and reaches the session
app's four real vLLM tier deployments through their DeploymentHandles. It adds one router
replica (torch + MiniLM, ~0.5 GB) and is deleted at module teardown.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.integration.conftest import APP

ROUTE = "/routing"


@pytest.fixture(scope="module")
def learned_url(platform):
    from ray import serve

    from tierserve.router.ingress import RouterIngress

    routing = platform.config.routing.model_copy(update={"classifier": "embedding"})
    config = platform.config.model_copy(update={"routing": routing})
    handles = {v.name: serve.get_deployment_handle(v.name, app_name=APP)
               for _, v in config.variants()}
    ingress = serve.deployment(serve.ingress()(RouterIngress), name="router-embedding",
                               ray_actor_options={"num_cpus": 0.1})
    begin = time.monotonic()
    serve.run(ingress.bind(config.model_dump(mode="json"), handles), name="routing",
              route_prefix=ROUTE)
    print(f"\nembedding router deployed in {time.monotonic() - begin:.1f} s")
    yield f"{platform.url}{ROUTE}"
    serve.delete("routing")


def chat(url: str, messages: list[dict]) -> httpx.Response:
    r = httpx.post(f"{url}/v1/chat/completions", timeout=120,
                   json={"model": "auto", "messages": messages, "max_tokens": 4})
    assert r.status_code == 200, r.text
    return r


def test_embedding_classifier_routes_to_different_tiers(learned_url):
    cases = [
        ([{"role": "user", "content": "What is the capital of France?"}], "7b"),
        ([{"role": "user", "content": "Write a Python function that merges two sorted lists "
                                      "and explain it."}], "33b"),
        ([{"role": "user", "content": "请证明根号2是无理数，并逐步推导。"}], "236b"),
        # multi-turn whose last turn is simple: dialogue, not 7b and not 236b
        ([{"role": "user", "content": "Prove that there are infinitely many primes."},
          {"role": "assistant", "content": "Assume there are finitely many primes..."},
          {"role": "user", "content": "Thanks!"}], "33b"),
    ]
    for messages, tier in cases:
        r = chat(learned_url, messages)
        assert r.headers["x-tierserve-tier"] == tier, (messages, r.headers)
        assert r.headers["x-tierserve-route-reason"].startswith("embedding:p=")
        assert r.json()["model"] == f"smol-{tier}"
        assert r.json()["usage"]["completion_tokens"] > 0


def test_session_app_still_routes_with_rules(platform, learned_url):
    r = chat(platform.url, [{"role": "user", "content": "What is the capital of France?"}])
    assert r.headers["x-tierserve-route-reason"].startswith("rules:")
