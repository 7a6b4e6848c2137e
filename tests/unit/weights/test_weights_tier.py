"""The tier deployment, the router's /v1/models, the app builder and the CLI, wired to a
real local store (FakeEngine for the engine)."""

from __future__ import annotations

import httpx
import pytest
import yaml

from tests.unit.conftest import small_config, variant
from tierserve.config import parse_config
from tierserve.deployments.fake_engine import FakeEngine
from tierserve.deployments.tier import TierDeployment
from tierserve.platform.cli import main
from tierserve.router.http_app import create_app
from tierserve.router.service import RouterService
from tierserve.router.tier_client import LocalTierClient
from tierserve.weights.audit import read_audit
from tierserve.weights.spec import replica_spec, tracks


def hot_config(tmp_path, **weights) -> dict:
    data = small_config()
    data["tiers"][0]["variants"][0] = variant("small-fp32", weights={"hot_reload": True})
    data["weights"] = {"root": str(tmp_path / "store"), "announce": "poll",
                       "poll_interval_s": 0.05, **weights}
    return data


async def make_tier(config, base, made: list) -> TierDeployment:
    tier, v = config.find_variant("small-fp32")

    def factory(name, args):
        made.append(args)
        return FakeEngine(name, args["max_model_len"])

    dep = TierDeployment(tier.id, v.name, {"max_model_len": 64, "model": str(base)},
                         engine_factory=factory, weights=replica_spec(config, tier.id, v, None))
    await dep.start()
    return dep


async def test_a_replica_starts_on_the_newest_version_and_reports_it(tmp_path, store, checkpoint):
    config = parse_config(hot_config(tmp_path))
    base = checkpoint("base")
    store.publish("7b", checkpoint("v1", fill=1), publisher="op")
    made = []
    dep = await make_tier(config, base, made)
    try:
        assert made[-1]["model"] == str(store.fetch("7b", 1))  # engine built on v1
        assert dep.weight_version == 1
        assert (await dep.stats()).extra["weights_version"] == 1
        info = await dep.info()
        assert info["weights"]["version"] == 1 and info["weights"]["announce"] == "poll"
        store.publish("7b", checkpoint("v2", fill=2), publisher="op")
        record = await dep.weights.check("poll")
        assert record["result"] == "ok" and dep.weight_version == 2
        assert dep.engine.weights_label == "v2"
    finally:
        await dep.shutdown()
    assert dep.weights._task is None


async def test_models_endpoint_shows_loaded_weight_versions(tmp_path, store, checkpoint):
    config = parse_config(hot_config(tmp_path))
    store.publish("7b", checkpoint("v1", fill=1), publisher="op")
    deps = {}
    for tier, v in config.variants():
        if v.name == "small-fp32":
            deps[v.name] = await make_tier(config, checkpoint("base"), [])
        else:
            deps[v.name] = TierDeployment(tier.id, v.name, {"max_model_len": 64},
                                          engine_factory=lambda n, a: FakeEngine(n))
            await deps[v.name].start()
    app = create_app(RouterService(config, LocalTierClient(deps)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        models = {m["id"]: m for m in (await c.get("/v1/models")).json()["data"]}
    assert models["small-fp32"]["weights_version"] == 1
    assert "weights_version" not in models["small-int8"]  # not following the store
    for dep in deps.values():
        await dep.shutdown()


def test_specs_follow_config(tmp_path):
    data = hot_config(tmp_path, announce="auto")
    data["tiers"][0]["variants"][1] = variant(
        "small-int8", precision="int8", weights={"hot_reload": True, "track": "7b-int8"})
    config = parse_config(data)
    assert tracks(config) == {"7b": ["small-fp32"], "7b-int8": ["small-int8"]}
    tier, v = config.find_variant("small-fp32")
    assert replica_spec(config, tier.id, v, None).redis_url is None
    spec = replica_spec(config, tier.id, v, "redis://r:6379/0")
    assert spec.redis_url == "redis://r:6379/0" and spec.lease_key == "tierserve.small-fp32"
    assert spec.audit_log == f"{tmp_path}/store/audit.jsonl"
    assert replica_spec(config, "33b", config.find_variant("medium-fp32")[1], None) is None
    from tierserve.errors import ConfigError

    strict = parse_config(hot_config(tmp_path, announce="redis"))
    with pytest.raises(ConfigError, match="REDIS_URL"):
        replica_spec(strict, tier.id, strict.find_variant("small-fp32")[1], None)


def test_cli_publishes_lists_verifies_and_audits(tmp_path, checkpoint, capsys):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(hot_config(tmp_path)))
    args = ["--config", str(path)]
    assert main(["publish-weights", "--tier", "7b", "--from", str(checkpoint("a")),
                 "--quiet", "--publisher", "alice", *args]) == 0
    assert "published 7b v1" in capsys.readouterr().out
    assert main(["publish-weights", "--tier", "7b", "--from", str(checkpoint("b", fill=3)),
                 "--version", "1", "--quiet", *args]) == 2
    assert "not newer" in capsys.readouterr().err
    assert main(["publish-weights", "--tier", "9b", "--from", str(checkpoint("c")), *args]) == 2
    assert "neither a tier" in capsys.readouterr().err
    assert main(["publish-weights", "--tier", "33b", "--from", str(checkpoint("d")),
                 "--quiet", *args]) == 0
    assert "no variant in this config has weights.hot_reload on" in capsys.readouterr().err
    assert main(["weights", "list", *args]) == 0
    listing = capsys.readouterr().out
    assert "7b: 1 version(s)" in listing and "alice" in listing
    assert main(["weights", "verify", "--tier", "7b", "--version", "1", *args]) == 0
    store_file = tmp_path / "store" / "7b" / "v000001" / "tokenizer.json"
    store_file.write_text("tampered")
    assert main(["weights", "verify", "--tier", "7b", "--version", "1", *args]) == 1
    assert main(["weights", "audit", *args]) == 0
    records = read_audit(tmp_path / "store" / "audit.jsonl")
    assert [(r["event"], r["result"]) for r in records] == [
        ("publish", "ok"), ("publish", "refused"), ("publish", "ok")]
    assert records[0]["actor"] == "alice" and records[0]["total_bytes"] > 0


def test_publishing_an_architecture_change_warns(tmp_path, checkpoint, capsys):
    from tests.unit.weights.conftest import BASE_CONFIG

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(hot_config(tmp_path)))
    args = ["--config", str(path), "--quiet", "--tier", "7b"]
    assert main(["publish-weights", "--from", str(checkpoint("a")), *args]) == 0
    wide = checkpoint("b", config={**BASE_CONFIG, "hidden_size": 8})
    assert main(["publish-weights", "--from", str(wide), *args]) == 0
    assert "replicas will refuse this version in place" in capsys.readouterr().err
