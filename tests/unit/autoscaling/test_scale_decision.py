"""The queue-depth policy on synthetic timelines (pure: no Ray)."""

from __future__ import annotations

from tierserve.autoscaling.decision import (
    Observation,
    PolicyState,
    ScalePolicyConfig,
    decide,
)

CFG = ScalePolicyConfig(min_replicas=1, max_replicas=4, target_queue_per_replica=4,
                        upscale_delay_s=1.0, downscale_delay_s=10.0)


def run(config, timeline, replicas=1, dt=0.5, handle=None):
    """Feed (queue per tick) through the policy, applying each target; return the trace."""
    state, trace = PolicyState(), []
    for i, queue in enumerate(timeline):
        obs = Observation(now=i * dt, current_replicas=replicas, engine_queue=queue,
                          handle_queued=(handle[i] if handle else 0))
        d = decide(config, obs, state)
        state, replicas = d.state, d.target_replicas
        trace.append((i * dt, replicas, d.reason))
    return trace


def replicas_over_time(trace):
    return [r for _, r, _ in trace]


def first_change(trace, start_replicas):
    return next(t for t, r, _ in trace if r != start_replicas)


def test_burst_scales_up_after_the_delay():
    trace = run(CFG, [0, 0] + [12] * 8)
    assert replicas_over_time(trace)[-1] == 3
    assert first_change(trace, 1) - 1.0 == 1.0  # the burst began at t=1.0; delay 1 s


def test_steady_load_at_target_holds():
    trace = run(CFG, [8] * 40, replicas=2)
    assert set(replicas_over_time(trace)) == {2}
    assert all(reason.startswith("steady") for _, _, reason in trace)


def test_drain_scales_down_only_after_downscale_delay():
    trace = run(CFG, [0] * 30, replicas=3)
    reps = replicas_over_time(trace)
    assert reps[19] == 3 and reps[20] == 1  # t=10 s
    assert "scale:down(3->1" in trace[20][2]


def test_flapping_input_never_scales():
    trace = run(CFG, [12, 0] * 20)
    assert set(replicas_over_time(trace)) == {1}


def test_boundary_queue_does_not_flap():
    # 2 replicas, queue oscillating around the 1-replica capacity: 4 ± 1
    trace = run(CFG, [3, 5] * 30, replicas=2)
    assert set(replicas_over_time(trace)) == {2}


def test_bounds_respected():
    assert replicas_over_time(run(CFG, [400] * 10))[-1] == 4
    assert replicas_over_time(run(CFG, [0] * 40, replicas=1))[-1] == 1
    trace = run(CFG, [0], replicas=9)
    assert trace[0][1] == 4 and trace[0][2].startswith("scale:bounds")


def test_scale_to_zero_and_back():
    cfg = ScalePolicyConfig(0, 2, 4, 1.0, 5.0, scale_to_zero=True)
    trace = run(cfg, [0] * 12 + [0, 0], replicas=1, handle=[0] * 12 + [3, 3])
    reps = replicas_over_time(trace)
    assert reps[10] == 0, "idle for the downscale delay → zero"
    assert reps[12] == 1 and "up-from-zero" in trace[12][2], "a queued request wakes it at once"


def test_no_scale_to_zero_unless_allowed():
    assert min(replicas_over_time(run(CFG, [0] * 40, replicas=2))) == 1


def test_cooldown_blocks_downscale_right_after_upscale():
    cfg = ScalePolicyConfig(1, 4, 4, 0.0, 3.0)
    trace = run(cfg, [12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], replicas=1)
    reps = replicas_over_time(trace)
    assert reps[0] == 3
    assert reps[1:6] == [3] * 5 and "cooldown" in trace[1][2]
    assert reps[-1] == 1


def test_per_tier_delays_differ():
    fast = ScalePolicyConfig(1, 4, 4, 0.5, 2.0)
    slow = ScalePolicyConfig(1, 4, 4, 5.0, 60.0)
    burst = [16] * 20
    assert first_change(run(fast, burst), 1) == 0.5
    assert first_change(run(slow, burst), 1) == 5.0


def test_reaction_is_within_two_seconds_with_default_delay():
    trace = run(CFG, [0] * 4 + [20] * 30, dt=0.1)
    assert first_change(trace, 1) - 0.4 <= 2.0
