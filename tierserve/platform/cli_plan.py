"""`tierserve plan`: GPUs, TP x PP, weights, KV cache and concurrency per variant."""

from __future__ import annotations

import argparse
import json

from tierserve.platform.settings import DEFAULT_CONFIG


def _plan(args: argparse.Namespace) -> int:
    from tierserve.config import load_config
    from tierserve.planner import Plan, format_table, plan_config
    from tierserve.platform.settings import ARCHITECTURES_DIR

    config = load_config(args.config)
    results = plan_config(config, ARCHITECTURES_DIR, gpu=args.gpu)
    plans = [r for r in results if isinstance(r, Plan)]
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        failures = [(r.deployment, r.tier, r.error) for r in results if not isinstance(r, Plan)]
        print(format_table(plans, failures))
    unfit = len(plans) != len(results) or any(not p.configured.fits for p in plans)
    return 1 if unfit else 0


def register(sub) -> None:
    from tierserve.planner.gpus import GPUS

    plan = sub.add_parser(
        "plan",
        help="capacity plan: GPUs, TP x PP, weight and KV bytes, max concurrent sequences",
        description="Plan each variant from its architecture (config.json) and precision. "
        "Exit status 1 when a variant cannot be planned or its configured TP x PP is too small.",
    )
    plan.add_argument("--config", default=str(DEFAULT_CONFIG), help="config file")
    plan.add_argument("--gpu", choices=sorted(GPUS), default=None,
                      help="plan every variant on this GPU (default: each variant's "
                      "accelerator_type, else h100-80gb)")
    plan.add_argument("--json", action="store_true", help="print a JSON list, one object a variant")
    plan.set_defaults(func=_plan)
