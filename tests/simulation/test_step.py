"""The day step, its share-policy seam, and the small pure helpers it stands on."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from recsys.simulation.build import build_world, world_rng
from recsys.simulation.config import SimConfig
from recsys.simulation.sharing import PicksSharePolicy, ShareRequest
from recsys.simulation.simulate import simulate
from recsys.simulation.state import PendingQueue, SimState
from recsys.simulation.step import day_rng, step_day
from recsys.simulation.tiers import target_tiers
from recsys.simulation.world import World, expand_ranges


def _world(n_days: int = 20) -> World:
    return build_world(SimConfig.preset("tiny", n_days=n_days), world_rng(5), 5)


def _run(world: World, days: int, policy=None):  # type: ignore[no-untyped-def]
    state = SimState.initial(world)
    return [step_day(world, state, d, day_rng(5, d), policy) for d in range(days)]


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-50, 50)), max_size=40))
def test_pending_queue_pops_each_days_rows_in_push_order(rows: list[tuple[int, int]]) -> None:
    queue = PendingQueue()
    half = len(rows) // 2
    for batch in (rows[:half], rows[half:]):
        days = np.array([d for d, _ in batch], dtype=np.int64)
        queue.push(days, value=np.array([v for _, v in batch], dtype=np.int64))
    for day in range(6):
        popped = queue.pop(day)
        expected = [v for d, v in rows if d == day]
        assert (popped is None) == (not expected)
        if popped is not None:
            assert popped["value"].tolist() == expected
    assert len(queue) == 0


@given(st.lists(st.tuples(st.integers(-5, 5), st.integers(0, 4)), max_size=20))
def test_expand_ranges_lists_every_element(ranges: list[tuple[int, int]]) -> None:
    start = np.array([s for s, _ in ranges], dtype=np.int64)
    size = np.array([n for _, n in ranges], dtype=np.int64)
    owner, values = expand_ranges(start, size)
    expected = [(i, s + j) for i, (s, n) in enumerate(ranges) for j in range(n)]
    assert list(zip(owner.tolist(), values.tolist(), strict=True)) == expected


def test_record_hits_keeps_the_latest_distinct_skus() -> None:
    world = _world()
    state = SimState.initial(world)
    width = state.hits.shape[1]
    state.record_hits(np.zeros(width + 3, dtype=np.int32), np.arange(width + 3, dtype=np.int32))
    state.record_hits(np.array([0, 0]), np.array([5, 5], dtype=np.int32))  # known: no new slot
    assert sorted(state.hits[0].tolist()) == list(range(3, width + 3))
    assert (state.hits[1] == -1).all()


def test_target_tiers_follow_contribution_ranks() -> None:
    world = _world()
    contribution = np.arange(100, 0, -1, dtype=np.float64)
    tiers = target_tiers(world, contribution, np.ones(100, dtype=bool))
    assert np.bincount(tiers, minlength=6)[1:].tolist() == [40, 30, 17, 9, 4]
    assert tiers[0] == 5 and tiers[-1] == 1
    silent = target_tiers(world, np.zeros(100), np.ones(100, dtype=bool))
    assert (silent == 1).all()


def test_step_day_is_deterministic_given_the_day_rng() -> None:
    world = _world()
    a, b = _run(world, 8), _run(world, 8)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.purchases.purchase_id, y.purchases.purchase_id)
        np.testing.assert_array_equal(x.purchases.sku, y.purchases.sku)
        np.testing.assert_array_equal(x.returns.ts, y.returns.ts)


def test_step_day_events_lie_within_their_day() -> None:
    world = _world()
    for events in _run(world, 20):
        lo = world.start_seconds + events.day * 86_400
        for rows in (events.shares, events.purchases, events.returns):
            assert ((rows.ts >= lo) & (rows.ts < lo + 86_400)).all()
    assert sum(len(e.returns) for e in _run(world, 20)) > 0


def test_share_policy_replaces_the_agents_choice() -> None:
    world = _world()
    served = np.flatnonzero(world.skus.launch_day < 0)[:5]  # on sale from day 0
    picks = sp.csr_matrix(
        (
            np.ones(len(world.agents) * 5),
            (np.repeat(np.arange(len(world.agents)), 5), np.tile(served, len(world.agents))),
        ),
        shape=(len(world.agents), len(world.skus)),
    )
    events = _run(world, 5, PicksSharePolicy(picks, adoption=1.0))
    shared = np.concatenate([e.shares.sku for e in events])
    assert np.isin(shared, served).mean() > 0.8
    own = np.concatenate([e.shares.sku for e in _run(world, 5)])
    assert np.isin(own, served).mean() < 0.2


def test_share_policy_sharing_nothing_leaves_no_share_purchases() -> None:
    world = _world()

    def nothing(request: ShareRequest) -> np.ndarray:
        return np.full(len(request.agents), -1)

    events = _run(world, 3, nothing)
    assert all(len(e.shares) == 0 for e in events)
    assert all((e.purchases.share_id == -1).all() for e in events)


def test_picks_share_policy_checks_its_inputs() -> None:
    world = _world()
    with pytest.raises(ValueError, match=r"adoption must be in \[0, 1\], got 1.5"):
        PicksSharePolicy(sp.csr_matrix((2, 2)), adoption=1.5)
    policy = PicksSharePolicy(sp.csr_matrix((3, 4)))
    with pytest.raises(ValueError, match="picks must be agents x SKUs"):
        _run(world, 1, policy)


def test_step_day_continues_a_finished_run() -> None:
    result = simulate(SimConfig.preset("tiny", n_days=10), 5)
    last_id = int(result.state.next_purchase)
    more = [step_day(result.world, result.state, d, day_rng(5, d)) for d in range(10, 13)]
    bought = np.concatenate([e.purchases.purchase_id for e in more])
    assert len(bought) > 0 and bought.min() == last_id
    assert np.all(np.diff(bought) == 1)
