"""Where autoscaling decisions become visible: Ray metrics (dashboard, Prometheus) and a
small named actor that `tierserve status` reads for the last decision and its reason."""

from __future__ import annotations

import time

import ray

JOURNAL_NAME = "tierserve-autoscaling-journal"
NAMESPACE = "tierserve"


@ray.remote(num_cpus=0)
class ScaleJournal:
    def __init__(self):
        self.last: dict[str, dict] = {}
        self.last_scale: dict[str, dict] = {}

    def record(self, deployment: str, entry: dict) -> None:
        self.last[deployment] = entry
        if entry["reason"].startswith("scale"):
            self.last_scale[deployment] = entry

    def snapshot(self) -> dict[str, dict]:
        return {name: {**entry, "last_scale": self.last_scale.get(name)}
                for name, entry in self.last.items()}


class _Reporter:
    def __init__(self):
        from ray.util import metrics

        tags = ("deployment",)
        self.current = metrics.Gauge("tierserve_autoscaling_current_replicas",
                                     "Replicas running now, per deployment.", tag_keys=tags)
        self.target = metrics.Gauge("tierserve_autoscaling_target_replicas",
                                    "Replicas the queue-depth policy asks for.", tag_keys=tags)
        self.desired = metrics.Gauge("tierserve_autoscaling_desired_replicas",
                                     "Replicas the queue alone would justify (before delays).",
                                     tag_keys=tags)
        self.decisions = metrics.Counter("tierserve_autoscaling_decisions",
                                         "Policy outcomes by kind (scale, hold, steady).",
                                         tag_keys=("deployment", "kind"))
        self.journal = ScaleJournal.options(
            name=JOURNAL_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True
        ).remote()


def report(reporter: _Reporter | None, deployment: str, current: int, decision) -> _Reporter:
    reporter = reporter or _Reporter()
    tags = {"deployment": deployment}
    reporter.current.set(current, tags=tags)
    reporter.target.set(decision.target_replicas, tags=tags)
    reporter.desired.set(decision.desired_replicas, tags=tags)
    kind = decision.reason.split(":")[0].split("(")[0]
    reporter.decisions.inc(tags={"deployment": deployment, "kind": kind})
    reporter.journal.record.remote(deployment, {
        "at": time.time(), "current": current, "target": decision.target_replicas,
        "reason": decision.reason,
    })
    return reporter


def read_journal() -> dict[str, dict]:
    try:
        actor = ray.get_actor(JOURNAL_NAME, namespace=NAMESPACE)
    except ValueError:
        return {}
    return ray.get(actor.snapshot.remote(), timeout=10)
