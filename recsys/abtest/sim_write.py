"""Write a simulated experiment as a data directory: what the service and the sink would log.

Layout: the six contract tables (`skus`, `agents`, `customers` as single files; `shares`,
`purchases`, `returns` partitioned `date=YYYY-MM-DD/part-0.parquet`), `exposures/` and `clicks/`
partitioned the same way, `experiments.yaml` (the configuration the report reads with
`--experiments-file`) and `truth.json` (the true effects, never read by the report).

    python -m recsys.abtest.sim_write var/ab-demo --scenario effect --scale small --seed 0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from recsys.abtest.data import write_partitioned
from recsys.abtest.sim_config import SCALES, SCENARIOS, scenario
from recsys.abtest.sim_truth import true_effects
from recsys.abtest.simulate import DAY, SimulatedExperiment, simulate_experiment
from recsys.contract.io import write_table

REASONS = ("quality", "not_as_described", "damaged", "fit", "changed_mind", "other")


def contract_tables(sim: SimulatedExperiment) -> dict[str, pd.DataFrame]:
    """The six contract tables with every column the data contract requires."""
    config, world, data = sim.config, sim.world, sim.data
    origin = pd.Timestamp(config.start, tz="UTC") - config.pre_days * DAY
    n_skus = config.n_skus
    sku_ids = [f"S{i:05d}" for i in range(n_skus)]
    skus = pd.DataFrame(
        {
            "sku_id": sku_ids,
            "title": [f"product {i}" for i in range(n_skus)],
            "category": [
                ("fresh_food", "snacks", "household", "cosmetics")[i % 4] for i in range(n_skus)
            ],
            "series": None,
            "brand": [f"brand-{i % 17}" for i in range(n_skus)],
            "price": world.price,
            "tags": [[] for _ in range(n_skus)],
            "launched_at": origin - 400 * DAY,
            "regions": [[] for _ in range(n_skus)],
            "status": "active",
        }
    )
    agent_ids = [f"A{i:06d}" for i in range(config.n_agents)]
    agents = pd.DataFrame(
        {"agent_id": agent_ids, "region": "east", "tier": 1, "joined_at": origin - 60 * DAY}
    )
    customers = data.customers.assign(region="east")[
        ["customer_id", "region", "agent_id", "joined_at"]
    ]
    shares = data.shares.assign(channel="group", audience_size=None)
    purchases = data.purchases.assign(share_id=None)
    rng = np.random.default_rng([sim.seed, 7])
    returns = data.returns.assign(reason=rng.choice(REASONS, size=len(data.returns)))
    return {
        "skus": skus,
        "agents": agents,
        "customers": customers,
        "shares": shares,
        "purchases": purchases,
        "returns": returns,
    }


def write_experiment(sim: SimulatedExperiment, out: str | Path) -> Path:
    """Write the data directory of `sim` to `out` (created; must not hold a data directory yet).

    Raises
    ------
    FileExistsError
        If `out` already holds files.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new folder")
    tables = contract_tables(sim)
    for name in ("skus", "agents", "customers"):
        write_table(tables[name], out / f"{name}.parquet", name)
    for name in ("shares", "purchases", "returns"):
        write_partitioned(tables[name], out / name)
    write_partitioned(sim.data.exposures, out / "exposures")
    write_partitioned(sim.data.clicks, out / "clicks")
    experiment = sim.experiment.model_dump(mode="json")
    (out / "experiments.yaml").write_text(
        yaml.safe_dump({"experiments": [experiment]}, sort_keys=False)
    )
    control, treatment = sim.config.variants[0], sim.config.variants[1]
    truth = {
        "seed": sim.seed,
        "config": sim.config.to_dict(),
        "control": control,
        "treatment": treatment,
        "effects": true_effects(sim.truth, control, treatment),
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=2))
    return out


def main(argv: list[str] | None = None) -> None:
    """Write one simulated experiment's data directory (fast mode, no service involved)."""
    parser = argparse.ArgumentParser(description="Write a simulated A/B experiment's data.")
    parser.add_argument("out", type=Path, help="new folder for the data directory")
    parser.add_argument("--scenario", choices=SCENARIOS, default="effect")
    parser.add_argument("--scale", choices=list(SCALES), default="small")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sim = simulate_experiment(scenario(args.scenario, args.scale), args.seed)
    out = write_experiment(sim, args.out)
    print(
        f"wrote experiment {sim.experiment.name!r} ({sim.config.n_agents} agents) to {out}; "
        f"its configuration is {out / 'experiments.yaml'}"
    )


if __name__ == "__main__":
    main()
