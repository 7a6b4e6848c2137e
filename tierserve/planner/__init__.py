"""Capacity planning: weights, KV cache, GPUs and TP x PP per variant (pure: no Ray, no vLLM)."""

from tierserve.planner.architecture import Architecture, architecture_from, param_count
from tierserve.planner.check import (
    Unplanned,
    check_capacity,
    plan_config,
    validate_deployment,
)
from tierserve.planner.gpus import GPUS, GpuSpec, gpu_spec
from tierserve.planner.plan import Fit, Plan, PlannerPolicy, plan_variant
from tierserve.planner.report import format_table

__all__ = [
    "GPUS", "Architecture", "Fit", "GpuSpec", "Plan", "PlannerPolicy", "Unplanned",
    "architecture_from", "check_capacity", "format_table", "gpu_spec", "param_count",
    "plan_config", "plan_variant", "validate_deployment",
]
