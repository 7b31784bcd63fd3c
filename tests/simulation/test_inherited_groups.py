"""Inherited groups: new agents who bring customers that already bought through a host."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.columns import Columns as C
from recsys.simulation.config import SimConfig
from recsys.simulation.simulate import SimulationResult, simulate, write_simulation
from recsys.simulation.truth import load_truth

SHARE = 1.0


@pytest.fixture(scope="module")
def run() -> SimulationResult:
    """A `tiny` run where every new agent brings her group along."""
    return simulate(SimConfig.preset("tiny", inherited_group_share=SHARE), 0)


def test_default_worlds_have_no_hosts_or_guests(tiny_run: SimulationResult) -> None:
    host, ptr, guests = tiny_run.world.hosts()
    assert (host == -1).all() and len(guests) == 0 and ptr[-1] == 0
    cust = np.arange(len(tiny_run.world.customers))
    assert (tiny_run.world.agent_at(cust, 0) == tiny_run.world.customers.agent).all()


def test_inherited_groups_have_an_established_host_in_their_region(run: SimulationResult) -> None:
    world = run.world
    agents, customers = world.agents, world.customers
    host, ptr, guests = world.hosts()
    brought = np.flatnonzero(host >= 0)
    new = np.flatnonzero(agents.joined_day >= 0)
    assert len(brought) > 0 and set(brought) <= set(new)
    assert (agents.joined_day[host[brought]] < 0).all()
    same_region = agents.region[host[brought]] == agents.region[brought]
    assert same_region.mean() > 0.9  # another region only where hers has no established agent
    # guests: exactly the customers who joined before their own agent, grouped by host
    early = np.flatnonzero(customers.joined_day < agents.joined_day[customers.agent])
    assert sorted(guests) == sorted(early)
    for h in np.unique(host[brought]):
        mine = guests[ptr[h] : ptr[h + 1]]
        assert (host[customers.agent[mine]] == h).all()


def test_guests_buy_through_their_host_until_their_agent_joins(run: SimulationResult) -> None:
    world = run.world
    ids = pd.Series(np.arange(len(world.agents)), index=world.agents.ids)
    cust_ix = pd.Series(np.arange(len(world.customers)), index=world.customers.ids)
    lines = run.tables["purchases"]
    cust = cust_ix[lines[C.CUSTOMER_ID]].to_numpy()
    through = ids[lines[C.AGENT_ID]].to_numpy()
    bound = world.customers.agent[cust]
    host = world.hosts()[0][bound]
    ts = (pd.to_datetime(lines[C.TS], utc=True) - world.start).dt.total_seconds().to_numpy()
    before = (host >= 0) & (ts / 86_400 < world.agents.joined_day[bound])
    assert before.sum() > 50  # the inherited groups bought before their agent joined ...
    # ... through their host (or a forwarded share of another agent), never their own agent
    assert (through[before] != bound[before]).all()
    assert (through[before] == host[before]).mean() > 0.9
    after = (host >= 0) & ~before
    assert (through[after] == bound[after]).mean() > 0.85
    # the customers table binds them to the agent who brought them
    table = run.tables["customers"].set_index(C.CUSTOMER_ID)
    early = world.customers.ids[host[world.customers.agent] >= 0]
    expected = world.agents.ids[world.customers.agent[host[world.customers.agent] >= 0]]
    assert (table.loc[early, C.AGENT_ID].to_numpy() == expected).all()


def test_a_world_read_back_finds_the_same_hosts(tmp_path: Path, run: SimulationResult) -> None:
    out = tmp_path / "inherited"
    write_simulation(SimConfig.preset("tiny", inherited_group_share=SHARE), 0, out, progress=False)
    again = load_truth(out).world
    for a, b in zip(again.hosts(), run.world.hosts(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert pd.read_parquet(out / "purchases.parquet").shape[0] == len(run.tables["purchases"])


def test_the_share_is_checked() -> None:
    with pytest.raises(ValueError, match="inherited_group_share must be in"):
        SimConfig.preset("tiny", inherited_group_share=1.5)


def test_the_join_window_bounds_when_new_agents_join(tiny_run: SimulationResult) -> None:
    days = tiny_run.world.config.n_days
    assert tiny_run.world.agents.joined_day.max() <= 0.85 * days
    late = simulate(SimConfig.preset("tiny", new_agent_join_window=1.0), 0).world.agents
    assert late.joined_day.max() > 0.85 * days
    with pytest.raises(ValueError, match="new_agent_join_window must be in"):
        SimConfig.preset("tiny", new_agent_join_window=1.2)
