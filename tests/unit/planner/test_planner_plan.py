"""The planner reproduces the known placements and refuses placements that cannot hold a model."""

from __future__ import annotations

import pytest

from tests.unit.planner.conftest import (
    ARCHITECTURES,
    DEEPSEEK,
    LOCAL,
    gpu_variant,
    one_variant_config,
)
from tierserve.config import load_config, parse_config
from tierserve.errors import ConfigError
from tierserve.planner import Plan, Unplanned, plan_config, validate_deployment
from tierserve.planner.gpus import GPUS, gpu_for_accelerator
from tierserve.planner.split import preferred_split, split_problem

JSON_KEYS = {"deployment", "tier", "precision", "weight_bytes", "kv_bytes_per_token",
             "gpus_per_replica", "tensor_parallel_size", "pipeline_parallel_size",
             "max_concurrent_seqs"}


def plans(config, gpu=None) -> dict[str, Plan]:
    results = plan_config(config, ARCHITECTURES, gpu=gpu)
    assert all(isinstance(r, Plan) for r in results), results
    return {r.deployment: r for r in results}


@pytest.mark.parametrize(
    "deployment, gpus, tp, pp",
    [
        ("deepseek-236b-bf16", 8, 4, 2),   # 236B BF16 -> 8 x H100 as TP=4 x PP=2
        ("deepseek-7b-bf16", 1, 1, 1),     # 7B BF16 -> 1 GPU
        ("deepseek-33b-bf16", 2, 2, 1),    # 33B BF16 -> 2 GPUs
        ("deepseek-33b-awq", 1, 1, 1),     # 33B INT4 -> 1 GPU
        ("deepseek-7b-int8", 1, 1, 1),
    ],
)
def test_known_placements_on_h100(deepseek, deployment, gpus, tp, pp):
    best = plans(deepseek)[deployment].recommended
    assert (best.gpus, best.tensor_parallel_size, best.pipeline_parallel_size) == (gpus, tp, pp)
    assert best.nodes == 1


def test_the_shipped_deepseek_config_agrees_with_the_planner(deepseek):
    for plan in plans(deepseek).values():
        conf, best = plan.configured, plan.recommended
        assert conf.fits, plan.deployment
        assert (conf.tensor_parallel_size, conf.pipeline_parallel_size) == (
            best.tensor_parallel_size, best.pipeline_parallel_size)


def test_sizing_rule_is_one_and_a_half_times_weights_for_dense_models(deepseek):
    plan = plans(deepseek)["deepseek-33b-bf16"]
    assert plan.recommended.need_bytes_per_gpu == pytest.approx(
        1.5 * plan.weight_bytes / 2 + plan.recommended.min_kv_bytes_per_gpu, rel=1e-6)
    assert plan.configured.gpus == 2


def test_moe_headroom_is_taken_on_active_weights(deepseek):
    plan = plans(deepseek)["deepseek-236b-bf16"]
    assert plan.active_weight_bytes < plan.weight_bytes / 10
    fit = plan.recommended
    assert fit.headroom_bytes_per_gpu == pytest.approx(0.5 * plan.active_weight_bytes / 8, abs=1)
    assert 1.4 < 8 * GPUS["h100-80gb"].memory_bytes / plan.weight_bytes < 1.5


def test_max_concurrent_seqs_follow_kv_capacity(deepseek):
    plan = plans(deepseek)["deepseek-236b-bf16"]
    fit = plan.recommended
    assert fit.max_concurrent_seqs == fit.kv_budget_bytes_per_gpu // (
        fit.kv_bytes_per_token_per_gpu * plan.max_model_len)
    assert 10 <= fit.max_concurrent_seqs <= 20
    assert any("max_num_seqs 64" in n for n in plan.notes)


def test_mla_prefers_pipeline_stages_beyond_tp4(deepseek):
    plan = plans(deepseek)["deepseek-236b-bf16"]
    arch_tp8 = preferred_split(8, _arch("deepseek-ai/DeepSeek-V2-Chat"), GPUS["h100-80gb"], 8)
    assert arch_tp8 == (8, 1)  # without the MLA cap it would be TP=8
    assert plan.recommended.tensor_parallel_size == 4


def _arch(repo):
    import json

    from tierserve.planner.architecture import architecture_from

    return architecture_from(json.loads((ARCHITECTURES / repo / "config.json").read_text()),
                             {}, repo)


def test_smaller_gpus_need_more_of_them(deepseek):
    l40s = plans(deepseek, gpu="l40s-48gb")
    assert l40s["deepseek-33b-bf16"].recommended.gpus == 4
    big = l40s["deepseek-236b-bf16"].recommended
    assert (big.gpus, big.tensor_parallel_size, big.pipeline_parallel_size, big.nodes) == (
        16, 4, 4, 2)
    assert not l40s["deepseek-236b-bf16"].configured.fits
    h200 = plans(deepseek, gpu="h200-141gb")
    assert h200["deepseek-33b-bf16"].recommended.gpus == 1


def test_json_has_the_issue_keys(deepseek):
    for result in plan_config(deepseek, ARCHITECTURES):
        d = result.as_dict()
        assert JSON_KEYS <= set(d)
        assert d["configured"]["fits"] is True


def test_explicit_tp_too_small_fails_validation_with_the_explanation():
    config = one_variant_config(gpu_variant(
        "ds33", "deepseek-ai/deepseek-coder-33b-instruct", max_model_len=16384,
        tensor_parallel_size=1))
    with pytest.raises(ConfigError) as err:
        validate_deployment(config, ARCHITECTURES)
    text = str(err.value)
    assert "configured TP=1 x PP=1 cannot hold it" in text
    assert "headroom (0.5 x weights)" in text
    assert "2 GPU(s) as TP=2 x PP=1" in text


def test_invalid_split_fails_validation():
    config = one_variant_config(gpu_variant(
        "ds7", "deepseek-ai/deepseek-llm-7b-chat", tensor_parallel_size=3))
    with pytest.raises(ConfigError, match="TP=3 does not divide the 32 attention heads"):
        validate_deployment(config, ARCHITECTURES)


def test_shipped_configs_validate():
    validate_deployment(load_config(DEEPSEEK), ARCHITECTURES)
    validate_deployment(load_config(LOCAL), ARCHITECTURES)  # CPU variants: no capacity check


def test_cpu_variants_are_not_capacity_checked():
    config = one_variant_config({"name": "cpu", "model": "deepseek-ai/DeepSeek-V2-Chat",
                                 "precision": "bf16", "max_model_len": 4096})
    validate_deployment(config, ARCHITECTURES)


def test_cpu_pipeline_parallel_is_refused():
    config = one_variant_config({"name": "cpu", "model": "/m", "precision": "fp32",
                                 "max_model_len": 64, "pipeline_parallel_size": 2})
    with pytest.raises(ConfigError, match="pipeline_parallel_size > 1 needs GPUs"):
        validate_deployment(config, ARCHITECTURES)


def test_unknown_architecture_is_reported_not_fatal_for_validation():
    config = one_variant_config(gpu_variant("mystery", "someone/unknown-model"))
    validate_deployment(config, ARCHITECTURES)
    (result,) = plan_config(config, ARCHITECTURES)
    assert isinstance(result, Unplanned)
    assert "configs/architectures/someone/unknown-model/config.json" in result.error


def test_inline_architecture_block_is_enough():
    config = one_variant_config(gpu_variant("inline", "someone/unknown-model", architecture={
        "num_hidden_layers": 30, "hidden_size": 4096, "intermediate_size": 11008,
        "num_attention_heads": 32, "vocab_size": 102400}))
    (result,) = plan_config(config, ARCHITECTURES)
    assert result.kv_bytes_per_token == 491520 and result.recommended.gpus == 1


def test_architecture_source_names_the_base_model():
    config = one_variant_config(gpu_variant(
        "q", "someone/private-awq-copy", precision="int4", quantization="awq",
        architecture={"source": "deepseek-ai/deepseek-coder-33b-instruct"}))
    (result,) = plan_config(config, ARCHITECTURES)
    assert result.weight_bytes / 1e9 == pytest.approx(18.0, abs=0.2)


@pytest.mark.parametrize(
    "model, extra, message",
    [
        ("deepseek-ai/deepseek-coder-33b-instruct", {"precision": "int4", "quantization": "awq"},
         "needs a pre-quantized checkpoint"),
        ("TheBloke/deepseek-coder-33B-instruct-AWQ", {"precision": "bf16"},
         "quantized to 4 bits but precision is bf16"),
        ("TheBloke/deepseek-coder-33B-instruct-AWQ", {"precision": "int8"},
         "precision int8 but the checkpoint holds 4-bit weights"),
    ],
)
def test_precision_must_match_the_checkpoint(model, extra, message):
    config = one_variant_config(gpu_variant("x", model, **extra))
    with pytest.raises(ConfigError, match=message):
        validate_deployment(config, ARCHITECTURES)


def test_fp8_on_a100_is_a_note(deepseek):
    plan = plans(deepseek, gpu="a100-80gb")["deepseek-7b-int8"]
    assert any("weight-only" in n for n in plan.notes)


def test_split_rules():
    a = _arch("deepseek-ai/deepseek-coder-33b-instruct")
    h100 = GPUS["h100-80gb"]
    assert split_problem(a, 16, 1, h100) == "TP=16 does not divide the 56 attention heads"
    v2 = _arch("deepseek-ai/DeepSeek-V2-Chat")
    assert split_problem(v2, 16, 1, h100).startswith("TP=16 would span nodes")
    assert split_problem(a, 2, 100, h100) == "PP=100 exceeds the 62 layers"
    assert split_problem(a, 8, 2, h100) is None


def test_accelerator_types_map_to_gpus():
    assert gpu_for_accelerator("H100").key == "h100-80gb"
    assert gpu_for_accelerator("A100-80G").key == "a100-80gb"
    assert gpu_for_accelerator("TPU-V4") is None and gpu_for_accelerator(None) is None


def test_max_model_len_drives_the_minimum_kv():
    small = parse_config({"tiers": [{"id": "7b", "variants": [gpu_variant(
        "a", "deepseek-ai/deepseek-llm-7b-chat", max_model_len=4096)]}]})
    (p,) = plan_config(small, ARCHITECTURES)
    assert p.recommended.min_kv_bytes_per_gpu == 491520 * 4096
