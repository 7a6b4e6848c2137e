from __future__ import annotations

from pathlib import Path

import pytest

from tierserve.config import load_config, parse_config
from tierserve.deployments.precision import engine_precision, validate_precisions
from tierserve.errors import ConfigError
from tests.unit.conftest import small_config, variant

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["local.yaml", "deepseek.yaml"])
def test_shipped_configs_validate(name):
    config = load_config(ROOT / "configs" / name)
    validate_precisions(config)
    assert config.tier_ids == ["7b", "33b", "236b"]


def test_deepseek_236b_is_tp4_pp2():
    config = load_config(ROOT / "configs" / "deepseek.yaml")
    v = config.tier("236b").default
    assert (v.tensor_parallel_size, v.pipeline_parallel_size, v.world_size) == (4, 2, 8)


def test_unknown_key_fails_with_field_path():
    data = small_config()
    data["tiers"][0]["variants"][0]["max_model_lenn"] = 5
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert "tiers.0.variants.0.max_model_lenn" in str(err.value)


def test_bad_value_names_the_field():
    data = small_config()
    data["tiers"][1]["variants"][0]["tensor_parallel_size"] = 0
    with pytest.raises(ConfigError, match=r"tiers\.1\.variants\.0\.tensor_parallel_size"):
        parse_config(data)


def test_unknown_tier_id_rejected():
    data = small_config()
    data["tiers"][0]["id"] = "70b"
    with pytest.raises(ConfigError, match=r"tiers\.0\.id"):
        parse_config(data)


def test_duplicate_variant_names_rejected():
    data = small_config()
    data["tiers"][1]["variants"][0]["name"] = "small-fp32"
    with pytest.raises(ConfigError, match="unique"):
        parse_config(data)


def test_variant_named_like_a_tier_rejected():
    data = small_config()
    data["tiers"][1]["variants"][0]["name"] = "7b"
    with pytest.raises(ConfigError, match="tier ids"):
        parse_config(data)


def test_latency_variant_must_exist():
    data = small_config()
    data["tiers"][0]["latency_variant"] = "nope"
    with pytest.raises(ConfigError, match="latency_variant"):
        parse_config(data)


def test_latency_variant_defaults_to_int8(config):
    assert config.tier("7b").latency.name == "small-int8"
    assert config.tier("33b").latency.name == "medium-fp32"


def test_scaling_bounds():
    data = small_config()
    data["tiers"][0]["variants"][0]["scaling"] = {"min_replicas": 3, "max_replicas": 2}
    with pytest.raises(ConfigError, match="min_replicas must be <= max_replicas"):
        parse_config(data)


def test_yaml_errors_are_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tiers: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_every_field_is_described():
    from tierserve import config as cfg

    for model in (cfg.TierServeConfig, cfg.TierConfig, cfg.VariantConfig, cfg.ScalingConfig,
                  cfg.ResourcesConfig, cfg.RouterConfig, cfg.RoutingConfig, cfg.ServerConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


@pytest.mark.parametrize(
    "extra, expected",
    [
        ({"precision": "fp32"}, {"dtype": "float32", "quantization": None}),
        ({"precision": "bf16"}, {"dtype": "bfloat16", "quantization": None}),
        ({"precision": "int8", "dtype": "bfloat16"}, {"dtype": "bfloat16", "quantization": None}),
        ({"precision": "int4", "quantization": "awq"}, {"dtype": "auto", "quantization": "awq"}),
    ],
)
def test_precision_mapping(extra, expected):
    data = small_config()
    data["tiers"][2]["variants"][0] = variant("x", **extra)
    config = parse_config(data)
    assert engine_precision(config.find_variant("x")[1]) == expected


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"precision": "fp32", "quantization": "awq"}, "unquantized"),
        ({"precision": "int8", "quantization": "awq"}, "not a int8 method"),
        ({"precision": "bf16", "dtype": "float16"}, "needs dtype bfloat16"),
    ],
)
def test_precision_mismatch_is_a_config_error(extra, message):
    data = small_config()
    data["tiers"][2]["variants"][0] = variant("x", **extra)
    with pytest.raises(ConfigError, match=message):
        validate_precisions(parse_config(data))
