"""Parameter, weight and KV-cache bytes of the real DeepSeek tiers, from their config.json."""

from __future__ import annotations

import json

import pytest

from tests.unit.planner.conftest import ARCHITECTURES, gpu_variant, one_variant_config
from tierserve.errors import ConfigError
from tierserve.planner import memory
from tierserve.planner.architecture import architecture_from, param_count

KiB = 1024


def arch(repo: str, checkpoint: bool = True):
    hf = json.loads((ARCHITECTURES / repo / "config.json").read_text())
    return architecture_from(hf, {}, repo, checkpoint=checkpoint)


def variant(model: str, **extra):
    config = one_variant_config(gpu_variant("v", model, **extra))
    return config.tiers[0].variants[0]


@pytest.mark.parametrize(
    "repo, params_b, weights_gb, kv_kib",
    [  # design.md: 6.9B / ~13.8 GB / ~480 KiB; 33B / ~66.7 GB / ~248 KiB; 236B / ~472 GB / ~67.5 KiB
        ("deepseek-ai/deepseek-llm-7b-chat", 6.9, 13.8, 480.0),
        ("deepseek-ai/deepseek-coder-33b-instruct", 33.3, 66.7, 248.0),
        ("deepseek-ai/DeepSeek-V2-Chat", 235.7, 471.5, 67.5),
    ],
)
def test_bf16_sizes_match_the_published_figures(repo, params_b, weights_gb, kv_kib):
    a, v = arch(repo), variant(repo)
    assert param_count(a).total / 1e9 == pytest.approx(params_b, abs=0.05)
    assert memory.weight_bytes(v, a) / 1e9 == pytest.approx(weights_gb, abs=0.1)
    assert memory.kv_bytes_per_token(v, a) / KiB == pytest.approx(kv_kib, abs=0.05)


def test_deepseek_v2_mla_caches_latent_plus_rope_per_layer():
    a = arch("deepseek-ai/DeepSeek-V2-Chat")
    assert a.uses_mla and a.is_moe and a.moe_layers == 59
    assert memory.kv_bytes_per_token(variant("x"), a) == 60 * (512 + 64) * 2


def test_deepseek_v2_active_parameters_are_about_21b():
    a = arch("deepseek-ai/DeepSeek-V2-Chat")
    assert param_count(a, active_only=True).total / 1e9 == pytest.approx(21.4, abs=0.2)


def test_gqa_kv_is_per_kv_head():
    a = arch("deepseek-ai/deepseek-coder-33b-instruct")
    assert memory.kv_bytes_per_token(variant("x"), a) == 2 * 62 * 8 * 128 * 2


def test_awq_int4_33b_is_about_18_gb():
    a = arch("TheBloke/deepseek-coder-33B-instruct-AWQ")
    assert (a.checkpoint_bits, a.checkpoint_group_size) == (4, 128)
    v = variant("TheBloke/deepseek-coder-33B-instruct-AWQ", precision="int4",
                quantization="awq_marlin", dtype="float16")
    assert memory.weight_bytes(v, a) / 1e9 == pytest.approx(18.0, abs=0.2)


def test_int8_halves_linear_layers_only():
    a = arch("deepseek-ai/deepseek-llm-7b-chat")
    v = variant("x", precision="int8", quantization="fp8")
    counts = param_count(a)
    assert memory.weight_bytes(v, a) == counts.linear + 2 * counts.other


def test_fp8_kv_cache_dtype_halves_kv():
    a = arch("deepseek-ai/deepseek-llm-7b-chat")
    v = variant("x", engine_kwargs={"kv_cache_dtype": "fp8"})
    assert memory.kv_bytes_per_token(v, a) == 491520 // 2


def test_smollm2_weights_match_its_checkpoint_size():
    # SmolLM2-135M as converted by `tierserve models install`: model.safetensors (bf16) is
    # 269,060,552 bytes, of which ~30 KB is the safetensors header.
    hf = {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536,
          "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
          "num_hidden_layers": 30, "vocab_size": 49152, "tie_word_embeddings": True}
    a = architecture_from(hf, {}, "smollm2")
    v = variant("x")
    assert memory.weight_bytes(v, a) == pytest.approx(269_060_552, rel=0.001)
    fp32 = variant("x", precision="fp32")
    assert memory.kv_bytes_per_token(fp32, a) == 46080  # install.md: ~46 KB/token in fp32


def test_tp_splits_kv_heads_but_not_the_mla_latent():
    v = variant("x")
    gqa = arch("deepseek-ai/deepseek-coder-33b-instruct")
    assert memory.kv_bytes_per_token_per_gpu(v, gqa, 2, 1) == 2 * 62 * 4 * 128 * 2
    assert memory.kv_bytes_per_token_per_gpu(v, gqa, 16, 1) == 2 * 62 * 1 * 128 * 2
    mla = arch("deepseek-ai/DeepSeek-V2-Chat")
    assert memory.kv_bytes_per_token_per_gpu(v, mla, 8, 1) == 60 * 576 * 2
    assert memory.kv_bytes_per_token_per_gpu(v, mla, 4, 2) == 30 * 576 * 2


def test_overrides_win_over_config_json():
    hf = json.loads((ARCHITECTURES / "deepseek-ai/deepseek-llm-7b-chat/config.json").read_text())
    a = architecture_from(hf, {"num_hidden_layers": 15, "vocab_size": None}, "x")
    assert a.num_layers == 15 and a.vocab_size == 102400


@pytest.mark.parametrize(
    "hf, message",
    [
        ({"hidden_size": 8, "num_attention_heads": 1, "vocab_size": 8}, "lacks num_hidden_layers"),
        ({"hidden_size": 8, "num_attention_heads": 1, "vocab_size": 8, "num_hidden_layers": 2},
         "intermediate_size"),
        ({"hidden_size": 8, "num_attention_heads": 1, "vocab_size": 8, "num_hidden_layers": 2,
          "intermediate_size": 8, "n_routed_experts": 4}, "moe_intermediate_size"),
        ({"hidden_size": 8, "num_attention_heads": 1, "vocab_size": 8, "num_hidden_layers": 2,
          "intermediate_size": 8, "kv_lora_rank": 4}, "qk_nope_head_dim"),
    ],
)
def test_incomplete_architectures_are_config_errors(hf, message):
    with pytest.raises(ConfigError, match=message):
        architecture_from(hf, {}, "x")


def test_mixtral_style_experts_are_understood():
    hf = {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
          "num_key_value_heads": 8, "num_hidden_layers": 32, "vocab_size": 32000,
          "num_local_experts": 8, "num_experts_per_tok": 2}
    a = architecture_from(hf, {}, "mixtral")
    assert param_count(a).total / 1e9 == pytest.approx(46.7, abs=0.1)  # Mixtral-8x7B
    assert param_count(a, active_only=True).total / 1e9 == pytest.approx(12.9, abs=0.1)
