"""Build the Ray Serve application from the config: one deployment per variant, one router.

The deployment classes stay plain; Serve options, resources, placement and autoscaling
are applied here.
"""

from __future__ import annotations

from pathlib import Path

from ray import serve

from tierserve.autoscaling.policy import serve_autoscaling_config
from tierserve.config import ObservabilityConfig, TierServeConfig, VariantConfig
from tierserve.deployments.engine_args import engine_kwargs
from tierserve.deployments.placement import placement_for
from tierserve.deployments.precision import validate_precisions
from tierserve.deployments.request_router import request_router_config
from tierserve.deployments.tier import TierDeployment
from tierserve.observability import RouterObserver, TierTelemetry
from tierserve.planner import validate_deployment
from tierserve.platform.settings import ARCHITECTURES_DIR, Settings, load_settings
from tierserve.router.ingress import RouterIngress
from tierserve.security.deploy import (
    apply_security_settings,
    check_deployable,
    weights_opener_options,
)
from tierserve.weights.spec import replica_spec

ROUTER_DEPLOYMENT = "router"


class ServeTier(TierDeployment):
    """TierDeployment with the async constructor Serve awaits before marking it ready."""

    async def __init__(self, *args, observability: dict | None = None, **kwargs):
        TierDeployment.__init__(self, *args, **kwargs)
        self.telemetry = TierTelemetry.from_config(
            observability, self.tier_id, self.variant_name,
            serve.get_replica_context().replica_id.unique_id)
        self.replica_id = serve.get_replica_context().replica_id.unique_id
        await self.start()
        self.telemetry.start_publishing(self.publish_metrics)

    async def __del__(self):
        await self.shutdown()


class ServeRouter(RouterIngress):
    """RouterIngress whose service records this replica's traces, metrics and JSON logs."""

    def __init__(self, config: dict, handles):
        settings = ObservabilityConfig.model_validate(config.get("observability") or {})
        observer = RouterObserver.from_config(settings)  # logging first: the ingress logs
        RouterIngress.__init__(self, config, handles)
        self.service.observer = observer


def engine_env(variant: VariantConfig, settings: Settings) -> dict[str, str]:
    env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_CACHE_ROOT": str(settings.vllm_cache_dir),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    env.update(variant.env)
    return env


def _scaling_options(variant: VariantConfig) -> dict:
    scaling = variant.scaling
    if not scaling.autoscaled:
        return {"num_replicas": scaling.start_replicas}
    return {"autoscaling_config": serve_autoscaling_config(variant.name, scaling)}


def tier_deployment(config: TierServeConfig, tier_id: str, variant: VariantConfig, settings: Settings):
    model = config.resolve_model(variant.model)
    tokenizer = config.resolve_model(variant.tokenizer or variant.model)
    options = placement_for(variant).serve_options()
    options["ray_actor_options"]["runtime_env"] = {"env_vars": engine_env(variant, settings)}
    deployment = serve.deployment(
        ServeTier,
        name=variant.name,
        max_ongoing_requests=variant.max_ongoing_requests,
        health_check_period_s=10,
        health_check_timeout_s=30,
        graceful_shutdown_timeout_s=20,
        **_scaling_options(variant),
        **_router_options(tier_id, variant, config),
        **options,
    )
    weights = replica_spec(config, tier_id, variant,
                           config.context.redis_url or settings.redis_url,
                           opener_options=weights_opener_options(config))
    return deployment.bind(tier_id, variant.name, _engine_args(variant, model, tokenizer),
                           observability=config.observability.model_dump(mode="json"),
                           weights=weights)


def _engine_args(variant: VariantConfig, model: str, tokenizer: str) -> dict:
    if variant.engine == "fake":
        return {"engine": "fake", "max_model_len": variant.max_model_len, **variant.engine_kwargs}
    return engine_kwargs(variant, model, tokenizer)


def _router_options(tier_id: str, variant: VariantConfig, config: TierServeConfig) -> dict:
    """Replica-aware request router for variants that can have several replicas."""
    if variant.scaling.max_replicas == 1:
        return {}
    router = request_router_config(tier_id, variant, config.context)
    return {"request_router_config": router} if router is not None else {}


def apply_settings(config: TierServeConfig, settings: Settings) -> TierServeConfig:
    """Fill what the environment decides: the models directory and the Redis URL."""
    if settings.models_dir_override is not None:
        config = config.model_copy(update={"models_dir": str(settings.models_dir_override)})
    if config.context.redis_url is None and settings.redis_url:
        context = config.context.model_copy(update={"redis_url": settings.redis_url})
        config = config.model_copy(update={"context": context})
    return apply_security_settings(config, settings.api_keys_file, settings.weights_key_file)


def build_app(config: TierServeConfig, settings: Settings | None = None):
    """The Serve application for `config` (validated; nothing is started here)."""
    settings = settings or load_settings()
    validate_precisions(config)
    validate_deployment(config, ARCHITECTURES_DIR)
    config = apply_settings(config, settings)
    check_deployable(config)
    handles = {
        variant.name: tier_deployment(config, tier.id, variant, settings)
        for tier, variant in config.variants()
    }
    router = serve.deployment(
        serve.ingress()(ServeRouter),
        name=ROUTER_DEPLOYMENT,
        num_replicas=config.router.num_replicas,
        max_ongoing_requests=config.router.max_ongoing_requests,
        ray_actor_options={"num_cpus": config.router.num_cpus},
    )
    return router.bind(config.model_dump(mode="json"), handles)


def missing_local_models(config: TierServeConfig) -> list[str]:
    """Variants whose model is neither a local directory nor plausibly a hub id."""
    missing = []
    for _, variant in config.variants():
        if variant.engine == "fake":
            continue
        resolved = config.resolve_model(variant.model)
        looks_local = resolved.startswith("/") or "/" not in variant.model
        if looks_local and not Path(resolved).exists():
            missing.append(f"{variant.name}: {resolved}")
    return missing
