"""Pure parts of the service: refill selection, rendering, LRU, errors, experiments, buffer."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.ab import Experiment
from recsys.reasons import REASONS
from serving.answer import select
from serving.errors import field_name
from serving.experiments import ExperimentRegistry, load_experiments_file
from serving.exposures import ExposureBuffer
from serving.lru import LRU
from serving.metrics import Metrics
from serving.served import PickEntry, ReasonTails, pack_reasons
from serving.settings import Settings


def _entry(rows: list[int]) -> PickEntry:
    n = len(rows)
    none = np.zeros((n, 3), dtype=np.uint8)
    keys = pack_reasons(none, none.astype(np.uint16))
    return PickEntry(np.array(rows, np.int32), np.linspace(1, 0, n, dtype=np.float32), keys)


def _reference(lists: list[list[int]], allowed: list[bool], k: int) -> list[int]:
    out: list[int] = []
    for rows in lists:
        for row in rows:
            if allowed[row] and row not in out and len(out) < k:
                out.append(row)
    return out


N_SKUS = 25
distinct_rows = st.lists(st.integers(0, N_SKUS - 1), unique=True, max_size=12)


@given(
    lists=st.lists(distinct_rows, min_size=1, max_size=4),
    allowed=st.lists(st.booleans(), min_size=N_SKUS, max_size=N_SKUS),
    k=st.integers(1, 30),
)
def test_select_takes_the_first_k_allowed_distinct_skus_in_list_order(
    lists: list[list[int]], allowed: list[bool], k: int
) -> None:
    entries = [_entry(rows) for rows in lists]
    chosen = select(entries, np.array(allowed), k)
    rows = [int(entry.rows[p]) for entry, positions in chosen for p in positions]
    assert rows == _reference(lists, allowed, k)


def test_select_with_no_lists_is_empty() -> None:
    assert select([], np.ones(3, bool), 5) == []


def test_reason_tails_render_params_plain_words_and_unknown_ids() -> None:
    tails = ReasonTails(dict(REASONS))
    reasons = np.array([[2, 9, 0], [2, 0, 0], [1, 0, 0], [250, 0, 0]], dtype=np.uint8)
    params = np.array([[3, 1, 0], [0, 0, 0], [0, 0, 0], [7, 0, 0]], dtype=np.uint16)
    keys = pack_reasons(reasons, params).tolist()
    out = [orjson.loads(b"{" + tails.tail(key)[1:]) for key in keys]
    assert out[0]["reasons"] == [
        {
            "code": "customers_rebuy",
            "text": "3 of your customers bought this before",
            "params": {"n": 3},
        },
        {
            "code": "popular_in_region",
            "text": "A buyer in your region bought this recently",
            "params": {"n": 1},
        },
    ]
    assert out[1]["reasons"][0]["text"] == "Your customers bought this before"
    assert out[1]["reasons"][0]["params"] == {}
    assert out[2]["reasons"] == [{"code": "picked_for_you", "text": "Picked for you", "params": {}}]
    assert out[3]["reasons"] == [{"code": "reason_250", "text": "", "params": {}}]
    assert tails.tail(keys[0]) is tails.tail(keys[0])  # rendered once, then shared


def test_lru_evicts_the_least_recently_read() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1
    lru.put("c", 3)
    assert "b" not in lru and lru.get("a") == 1 and lru.get("c") == 3
    off: LRU[str, int] = LRU(0)
    off.put("a", 1)
    assert len(off) == 0
    with pytest.raises(ValueError, match="maxsize must be >= 0, got -1"):
        LRU(-1)


@pytest.mark.parametrize(
    ("loc", "name"),
    [
        (("query", "k"), "k"),
        (("body", "numbers", "x"), "numbers.x"),
        (("body",), "body"),
        (("path", "agent_id"), "agent_id"),
        ((), "request"),
    ],
)
def test_field_name_drops_the_place_prefix(loc: tuple[Any, ...], name: str) -> None:
    assert field_name(loc) == name


def _exp(name: str, target: str = "agent", enabled: bool = True, channel: str = "b") -> Experiment:
    return Experiment(
        name=name,
        salt="s",
        target=target,  # type: ignore[arg-type]
        enabled=enabled,
        variants=[{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "channel": channel}],
    )


def test_registry_applies_one_experiment_per_target_redis_over_file() -> None:
    reg = ExperimentRegistry(from_file={"x": _exp("x"), "y": _exp("y", target="customer")})
    assert reg.active["agent"].name == "x" and reg.channels("agent") == ["b", "current"]
    assert reg.conflict(_exp("z")) == "x" and reg.conflict(_exp("z", enabled=False)) is None
    assert reg.set_redis({"x": _exp("x", enabled=False)}) is True
    assert "agent" not in reg.active and reg.channels("agent") == ["current"]
    assert reg.set_redis({"x": _exp("x", enabled=False)}) is False
    assert reg.effective()["x"][1] == "redis" and reg.effective()["y"][1] == "file"


def test_experiments_file_errors_name_the_problem(tmp_path: Path) -> None:
    good = tmp_path / "e.json"
    good.write_text(orjson.dumps([_exp("x").model_dump()]).decode())
    assert list(load_experiments_file(good)) == ["x"]
    twice = tmp_path / "twice.yaml"
    twice.write_text(
        "experiments:\n  - {name: x, salt: s, variants: [{name: a, weight: 1}]}\n"
        "  - {name: x, salt: t, variants: [{name: a, weight: 1}]}\n"
    )
    with pytest.raises(ValueError, match="experiment name 'x' repeats"):
        load_experiments_file(twice)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {name: x, salt: s, variants: []}\n")
    with pytest.raises(ValueError, match="experiment #0 is invalid"):
        load_experiments_file(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(ValueError, match="must hold a list of experiments"):
        load_experiments_file(scalar)


def test_exposure_buffer_drops_the_oldest_when_full() -> None:
    metrics = Metrics()
    buffer = ExposureBuffer(Settings(exposure_buffer_max=3), metrics)
    for i in range(5):
        buffer.add(i)  # type: ignore[arg-type]
    assert len(buffer) == 3
    assert b"recsys_exposures_dropped_total 2.0" in metrics.render()


def test_score_text_keeps_four_significant_digits() -> None:
    assert [b"%.4g" % s for s in (0.93017578125, 12.0, 1234567.0)] == [
        b"0.9302",
        b"12",
        b"1.235e+06",
    ]
    assert math.isclose(orjson.loads(b"1.235e+06"), 1235000.0)


def test_an_exhausted_pool_is_counted_but_is_no_outage() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import MaxConnectionsError

    from serving.live import LiveState

    metrics = Metrics()
    live = LiveState(Settings(), metrics)
    live.redis = object()  # type: ignore[assignment]  # "connected": only the flag matters here
    live.mark_down("hget", MaxConnectionsError("Too many connections"))
    assert live.redis_usable()
    assert b'recsys_redis_errors_total{op="pool_exhausted"} 1.0' in metrics.render()
    live.mark_down("hget", RedisConnectionError("refused"))
    assert not live.redis_usable()


def test_registry_assignment_is_recsys_ab_assignment() -> None:
    exp = _exp("x")
    reg = ExperimentRegistry(from_file={"x": exp})
    for unit in (f"agent-{i}" for i in range(300)):
        got = reg.assign("agent", unit)
        assert got is not None and got[0] is exp and got[1] == exp.assign(unit)
    assert reg.assign("customer", "c1") is None
