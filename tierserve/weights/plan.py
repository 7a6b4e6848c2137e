"""What a replica should do about the versions it can see: a pure decision, as data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ReloadPlan:
    load: int | None
    """The version to verify and load: the newest one above the loaded version that is
    not known bad; None when there is nothing to do."""
    refuse: tuple[int, ...] = ()
    """Versions newly seen or announced that are not newer than the loaded one: refused
    (and audited) — rolling back means publishing the old weights as a new version."""


def plan_reload(current: int, available: Iterable[int], seen: Iterable[int],
                skip: Iterable[int], announced: int | None = None) -> ReloadPlan:
    """`current`: the loaded version (0: the deployed checkpoint); `available`: versions in
    the store; `seen`: those already considered; `skip`: rejected or refused ones;
    `announced`: the version a message named, if a message woke us."""
    available, seen, skip = set(available), set(seen), set(skip)
    fresh = available - seen
    if announced is not None:
        fresh.add(announced)
    refuse = tuple(sorted(v for v in fresh if v <= current))
    candidates = [v for v in available if v > current and v not in skip]
    return ReloadPlan(max(candidates) if candidates else None, refuse)
