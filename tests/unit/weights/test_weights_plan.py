from tierserve.weights.plan import ReloadPlan, plan_reload


def test_nothing_to_do_without_newer_versions():
    assert plan_reload(3, [1, 2, 3], seen=[1, 2, 3], skip=[]) == ReloadPlan(None, ())


def test_the_newest_good_version_is_loaded_skipping_intermediate_ones():
    assert plan_reload(1, [1, 2, 3, 4], seen=[1], skip=[]).load == 4
    assert plan_reload(1, [1, 2, 3, 4], seen=[1], skip=[4]).load == 3
    assert plan_reload(0, [], seen=[], skip=[]).load is None


def test_newly_seen_older_versions_are_refused_once():
    plan = plan_reload(5, [2, 3, 5], seen=[3, 5], skip=[])
    assert plan == ReloadPlan(None, (2,))
    assert plan_reload(5, [2, 3, 5], seen=[2, 3, 5], skip=[]).refuse == ()


def test_an_announced_old_version_is_refused_even_if_seen_and_a_newer_one_still_loads():
    plan = plan_reload(5, [4, 5, 6], seen=[4, 5, 6], skip=[], announced=4)
    assert plan == ReloadPlan(6, (4,))
    assert plan_reload(5, [5], seen=[5], skip=[], announced=5).refuse == (5,)
