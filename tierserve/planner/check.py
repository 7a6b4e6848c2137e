"""Plan a whole config, and refuse one whose explicit placement cannot hold its model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tierserve.config import TierServeConfig, VariantConfig
from tierserve.deployments.placement import validate_placements
from tierserve.errors import ConfigError
from tierserve.planner.gpus import DEFAULT_GPU, GpuSpec, gpu_for_accelerator, gpu_spec
from tierserve.planner.plan import Plan, PlannerPolicy, plan_variant
from tierserve.planner.report import explain_configured
from tierserve.planner.resolve import find_architecture
from tierserve.planner.support import checkpoint_errors


@dataclass(frozen=True)
class Unplanned:
    deployment: str
    tier: str
    precision: str
    error: str

    def as_dict(self) -> dict:
        return {"deployment": self.deployment, "tier": self.tier,
                "precision": self.precision, "error": self.error}


def target_gpu(variant: VariantConfig, override: str | None) -> GpuSpec:
    """`--gpu` when given, else the variant's accelerator_type, else the default GPU."""
    if override is not None:
        return gpu_spec(override)
    return gpu_for_accelerator(variant.resources.accelerator_type) or gpu_spec(DEFAULT_GPU)


def plan_config(
    config: TierServeConfig,
    architectures_dir: Path | None,
    gpu: str | None = None,
    policy: PlannerPolicy | None = None,
) -> list[Plan | Unplanned]:
    """A plan per variant, in config order; variants that cannot be planned say why."""
    results: list[Plan | Unplanned] = []
    for tier, variant in config.variants():
        try:
            arch = find_architecture(variant, config, architectures_dir)
            errors = checkpoint_errors(variant, arch)
            if errors:
                raise ConfigError("; ".join(errors))
            results.append(plan_variant(tier.id, variant, arch, target_gpu(variant, gpu), policy))
        except ConfigError as err:
            results.append(Unplanned(variant.name, tier.id, variant.precision, err.message))
    return results


def is_gpu_variant(variant: VariantConfig) -> bool:
    return variant.resources.num_gpus > 0


def check_capacity(config: TierServeConfig, architectures_dir: Path | None) -> None:
    """Raise ConfigError if a GPU variant's TP x PP cannot hold its model on its GPU.

    Checked: variants with num_gpus > 0 whose accelerator_type names a known GPU and whose
    architecture can be found. CPU variants (num_gpus 0) are not capacity-checked.
    """
    problems = []
    for tier, variant in config.variants():
        gpu = gpu_for_accelerator(variant.resources.accelerator_type)
        if not is_gpu_variant(variant) or gpu is None:
            continue
        try:
            arch = find_architecture(variant, config, architectures_dir)
        except ConfigError:
            continue  # an unknown architecture is reported by `tierserve plan`, not fatal
        errors = checkpoint_errors(variant, arch)
        if errors:
            problems.extend(errors)
            continue
        plan = plan_variant(tier.id, variant, arch, gpu)
        if not plan.configured.fits:
            problems.append(explain_configured(plan))
    if problems:
        raise ConfigError("capacity check failed:\n" + "\n".join(problems))


def validate_deployment(config: TierServeConfig, architectures_dir: Path | None) -> None:
    """What `tierserve config validate` and the app builder check beyond the schema:
    that each variant's TP x PP runs on its device and, on GPUs, holds its model."""
    validate_placements(config)
    check_capacity(config, architectures_dir)
