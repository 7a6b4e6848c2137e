"""`tierserve k8s render`: KubeRay manifests from the config."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tierserve.platform.settings import DEFAULT_CONFIG


def _render(args: argparse.Namespace) -> int:
    from tierserve.config import load_config
    from tierserve.deployments.precision import validate_precisions
    from tierserve.k8s import load_values, render, write
    from tierserve.k8s.cluster import changes
    from tierserve.planner import validate_deployment
    from tierserve.platform.serve_entry import pod_settings, serve_deployments
    from tierserve.platform.settings import ARCHITECTURES_DIR

    config = load_config(args.config)
    validate_precisions(config)
    validate_deployment(config, ARCHITECTURES_DIR)
    values = load_values(args.values)
    settings = pod_settings(values.models_pvc is not None)
    manifests = render(config, values, lambda c: serve_deployments(c, settings),
                       ARCHITECTURES_DIR)
    source = args.source or Path(args.config).name
    if args.out is None:
        sys.stdout.write("\n---\n".join(manifests.files(source).values()))
        return 0
    for path in write(manifests, Path(args.out), source):
        print(f"wrote {path}")
    for change in changes(config):
        print(f"  on the cluster: {change}")
    for g in manifests.groups:
        gpus = f"{g.gpus_per_pod} GPU" if g.gpus_per_pod else "no GPU"
        print(f"  worker group {g.name:<10} {gpus:<7} {g.cpus_per_pod:>3} CPU "
              f"{g.memory_per_pod:>6}  pods {g.min_replicas}..{g.max_replicas} "
              f"(start {g.replicas})")
    return 0


def register(sub) -> None:
    k8s = sub.add_parser("k8s", help="Kubernetes (KubeRay) manifests")
    k8s_sub = k8s.add_subparsers(dest="k8s_command", required=True)
    render = k8s_sub.add_parser(
        "render", help="render a RayService, Redis and secrets from the config",
        description="Render the KubeRay install of a config: RayService (serveConfigV2 from "
        "the config, one worker group per tier sized by the planner), Redis, example secrets.")
    render.add_argument("--config", default=str(DEFAULT_CONFIG), help="config file")
    render.add_argument("--values", default=None,
                        help="cluster settings YAML (image, namespace, node selectors...)")
    render.add_argument("--out", default=None, help="directory to write; default: stdout")
    render.add_argument("--source", default=None,
                        help="name of the config in the files' header (default: its file name)")
    render.set_defaults(func=_render)
