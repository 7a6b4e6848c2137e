"""Ray Serve entry points for config files: serveConfigV2 on KubeRay, `serve deploy`.

`app_builder` is the application builder a serveConfigV2 names as its import_path; Serve
calls it with the application's `args`, whose `config` is the tierserve config tree.
`serve_deployments` writes the options the builder sets into that serveConfigV2, so the
rendered deployments section is exactly what the code would do (and operators can tune
replicas or resources there without a new image).
"""

from __future__ import annotations

from typing import Any

from tierserve.config import TierServeConfig, parse_config
from tierserve.k8s.pods import MODELS_MOUNT, POD_CACHE_DIR
from tierserve.platform.settings import Settings, load_settings

SERVE_CONFIG_OPTIONS = (
    "name", "num_replicas", "autoscaling_config", "max_ongoing_requests", "ray_actor_options",
    "placement_group_bundles", "placement_group_strategy", "health_check_period_s",
    "health_check_timeout_s", "graceful_shutdown_timeout_s",
)
"""Options written into serveConfigV2. Left out: request_router_config, whose kwargs carry
values resolved from the pod's environment (Redis URL) at build time on the cluster."""


def app_builder(args: dict[str, Any]):
    """Serve application builder: `args = {"config": <tierserve config mapping>}`."""
    from tierserve.platform.app import build_app

    config = parse_config((args or {}).get("config"), "serveConfigV2 args.config")
    return build_app(config)


def pod_settings(models_pvc: bool = True) -> Settings:
    """The settings tierserve reads on a KubeRay pod (k8s/pods.py sets that environment)."""
    env = {"TIERSERVE_CACHE_DIR": POD_CACHE_DIR}
    if models_pvc:
        env["TIERSERVE_MODELS_DIR"] = MODELS_MOUNT
    return load_settings(env)


def _with_stand_in_key(config: TierServeConfig) -> TierServeConfig:
    """The config with one stand-in key digest in place of the key file, which exists only
    on the cluster: keys reach the router as bind arguments, never as deployment options."""
    from tierserve.config import ApiKeyConfig

    stand_in = ApiKeyConfig(id="render-only", role="inference", sha256="0" * 64)
    security = config.security.model_copy(update={"api_keys_file": None,
                                                  "api_keys": [stand_in]})
    return config.model_copy(update={"security": security})


def serve_deployments(config: TierServeConfig, settings: Settings) -> list[dict]:
    """Each deployment's Serve options as the app builder sets them, router first, then the
    variants in config order (what `serve build` would print, less the unset options)."""
    from ray.serve._private.build_app import build_app as build_serve_app
    from ray.serve.deployment import deployment_to_schema

    from tierserve.platform.app import ROUTER_DEPLOYMENT, build_app

    app = build_app(_with_stand_in_key(config), settings)
    built = build_serve_app(app, name=config.server.app_name)
    schemas = {d.name: deployment_to_schema(d).model_dump(mode="json", exclude_unset=True)
               for d in built.deployments}
    order = [ROUTER_DEPLOYMENT] + [v.name for _, v in config.variants()]
    return [{k: schemas[name][k] for k in SERVE_CONFIG_OPTIONS if k in schemas[name]}
            for name in order]
