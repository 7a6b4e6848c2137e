"""Model architecture → parameter counts (pure).

Reads the fields vLLM and transformers use (Hugging Face config.json names) for dense
decoders (Llama, Qwen2, Mistral), Mixtral-style MoE and DeepSeek-V2/V3 (MoE + MLA).
Norms are counted; biases are not (they are < 0.01 % of these models).
"""

from __future__ import annotations

from dataclasses import dataclass

from tierserve.errors import ConfigError

REQUIRED = ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")


@dataclass(frozen=True)
class Architecture:
    """The facts of one model that decide its memory footprint."""

    source: str
    model_type: str
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool = False
    n_routed_experts: int = 0
    n_shared_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    first_k_dense: int = 0
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    checkpoint_known: bool = False
    """True when read from the served checkpoint's own config.json (checkpoint_* are facts)."""
    checkpoint_bits: int | None = None
    """Weight bits of a pre-quantized checkpoint (its quantization_config), else None."""
    checkpoint_group_size: int | None = None

    @property
    def is_moe(self) -> bool:
        return self.n_routed_experts > 0

    @property
    def uses_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def moe_layers(self) -> int:
        return self.num_layers - self.first_k_dense if self.is_moe else 0


@dataclass(frozen=True)
class ParamCount:
    """Parameters split by how precision treats them."""

    linear: int
    """Weights of the linear layers inside the blocks: what int8/int4 quantization shrinks."""
    other: int
    """Embedding, output head, norms and MoE router: kept at the compute dtype."""

    @property
    def total(self) -> int:
        return self.linear + self.other


def _mlp(arch: Architecture, width: int) -> int:
    return 3 * arch.hidden_size * width  # gate, up and down projections


def _attention(arch: Architecture) -> tuple[int, int]:
    """(linear params, norm params) of one attention block."""
    h, heads = arch.hidden_size, arch.num_heads
    if not arch.uses_mla:
        q_and_o = 2 * h * heads * arch.head_dim
        return q_and_o + 2 * h * arch.num_kv_heads * arch.head_dim, 0
    qk_dim = arch.qk_nope_head_dim + arch.qk_rope_head_dim
    if arch.q_lora_rank:
        q = h * arch.q_lora_rank + arch.q_lora_rank * heads * qk_dim
    else:
        q = h * heads * qk_dim
    kv_down = h * (arch.kv_lora_rank + arch.qk_rope_head_dim)
    kv_up = arch.kv_lora_rank * heads * (arch.qk_nope_head_dim + arch.v_head_dim)
    out = heads * arch.v_head_dim * h
    return q + kv_down + kv_up + out, arch.q_lora_rank + arch.kv_lora_rank


def param_count(arch: Architecture, active_only: bool = False) -> ParamCount:
    """All parameters, or those one token runs through (routed experts: only the top-k)."""
    attn_linear, attn_norms = _attention(arch)
    dense_layers = arch.num_layers - arch.moe_layers
    experts = arch.experts_per_token if active_only else arch.n_routed_experts
    experts += arch.n_shared_experts
    linear = (
        arch.num_layers * attn_linear
        + dense_layers * _mlp(arch, arch.intermediate_size)
        + arch.moe_layers * experts * _mlp(arch, arch.moe_intermediate_size)
    )
    embed = arch.vocab_size * arch.hidden_size
    head = 0 if arch.tie_word_embeddings else embed
    norms = arch.num_layers * (2 * arch.hidden_size + attn_norms) + arch.hidden_size
    router = arch.moe_layers * arch.n_routed_experts * arch.hidden_size
    return ParamCount(linear=linear, other=embed + head + norms + router)


def _checkpoint_quantization(hf: dict) -> tuple[int | None, int | None]:
    """(weight bits, group size) declared by a checkpoint's quantization_config."""
    q = hf.get("quantization_config")
    if not isinstance(q, dict):
        return None, None
    if "bits" in q:  # awq, gptq
        return int(q["bits"]), q.get("group_size")
    if q.get("quant_method") == "fp8":
        return 8, None
    for group in (q.get("config_groups") or {}).values():  # compressed-tensors
        weights = group.get("weights") or {}
        if "num_bits" in weights:
            return int(weights["num_bits"]), weights.get("group_size")
    return None, None


def _aliases(merged: dict) -> dict:
    if "num_local_experts" in merged and "n_routed_experts" not in merged:  # Mixtral
        merged["n_routed_experts"] = merged["num_local_experts"]
        merged.setdefault("moe_intermediate_size", merged.get("intermediate_size"))
    return merged


def architecture_from(
    hf: dict, overrides: dict, source: str, checkpoint: bool = False
) -> Architecture:
    """Build an Architecture from config.json fields, overridden by non-None `overrides`.

    `checkpoint`: `hf` is the served checkpoint's own config.json, so its
    quantization_config describes the weights vLLM will load.
    """
    merged = _aliases({**hf, **{k: v for k, v in overrides.items() if v is not None}})
    missing = [k for k in REQUIRED if not merged.get(k)]
    if missing:
        raise ConfigError(f"architecture of {source} lacks {', '.join(missing)}")
    heads = int(merged["num_attention_heads"])
    hidden = int(merged["hidden_size"])
    bits, group = _checkpoint_quantization(hf) if checkpoint else (None, None)

    def num(key: str, default: int = 0) -> int:
        value = merged.get(key)
        return int(value) if value else default

    arch = Architecture(
        source=source,
        model_type=str(merged.get("model_type", "unknown")),
        num_layers=num("num_hidden_layers"),
        hidden_size=hidden,
        intermediate_size=num("intermediate_size"),
        num_heads=heads,
        num_kv_heads=num("num_key_value_heads", heads),
        head_dim=num("head_dim", hidden // heads),
        vocab_size=num("vocab_size"),
        tie_word_embeddings=bool(merged.get("tie_word_embeddings", False)),
        n_routed_experts=num("n_routed_experts"),
        n_shared_experts=num("n_shared_experts"),
        experts_per_token=num("num_experts_per_tok"),
        moe_intermediate_size=num("moe_intermediate_size"),
        first_k_dense=num("first_k_dense_replace"),
        kv_lora_rank=num("kv_lora_rank"),
        q_lora_rank=num("q_lora_rank"),
        qk_nope_head_dim=num("qk_nope_head_dim"),
        qk_rope_head_dim=num("qk_rope_head_dim"),
        v_head_dim=num("v_head_dim"),
        checkpoint_known=checkpoint and bool(hf),
        checkpoint_bits=bits,
        checkpoint_group_size=int(group) if group else None,
    )
    _check_consistent(arch)
    return arch


def _check_consistent(arch: Architecture) -> None:
    where = f"architecture of {arch.source}"
    if arch.num_layers - arch.moe_layers > 0 and not arch.intermediate_size:
        raise ConfigError(f"{where} lacks intermediate_size (the dense MLP width)")
    if arch.is_moe and not (arch.moe_intermediate_size and arch.experts_per_token):
        raise ConfigError(f"{where}: an MoE model needs moe_intermediate_size and "
                          "num_experts_per_tok")
    if arch.uses_mla and not (arch.qk_rope_head_dim and arch.qk_nope_head_dim and arch.v_head_dim):
        raise ConfigError(f"{where}: MLA (kv_lora_rank) needs qk_nope_head_dim, "
                          "qk_rope_head_dim and v_head_dim")
