"""`recsys demo`: the main job end to end on embedded defaults.

simulated logs → validate → train (item-to-agent, item-to-customer) → promote → publish to a
Redis snapshot → serve, then print a `curl` that answers with picks and reasons. With no
`REDIS_URL` a private Redis server is started; MLflow keeps everything in `mlruns/`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys.console import console, fail

# Per-target model of the demo (the benchmark tables in docs/benchmarks.md say why).
DEMO_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "agent": ("blend", {"cf_model": "itemknn", "repeat_weight": 0.8}),
    "customer": ("blend", {"cf_model": "itemknn", "repeat_weight": 0.5}),
}


@dataclass
class DemoResult:
    """What the demo made: data, registered versions, snapshots, Redis URL and an API key."""

    data: Path
    versions: dict[str, str | None] = field(default_factory=dict)
    snapshots: dict[str, str] = field(default_factory=dict)
    redis_url: str = ""
    api_key: str = ""
    admin_key: str = ""  # for the picks explorer (/explorer)
    sample_agent: str = ""
    sample_customer: str = ""


def ensure_data(data: Path, scale: str, seed: int, fresh: bool) -> None:
    """Simulate `scale` into `data` unless tables are already there (or `fresh`)."""
    from recsys.simulation.config import SimConfig
    from recsys.simulation.simulate import existing_outputs, write_simulation

    if existing_outputs(data) and not fresh:
        console.print(f"[dim]using the simulated data already in {data} (--fresh to redo)[/]")
        return
    console.rule(f"1. simulate {scale} (seed {seed})")
    summary = write_simulation(SimConfig.preset(scale), seed, data, overwrite=True)
    console.print(f"simulated into {summary.out}")


def validate_data(data: Path) -> None:
    """Validate the tables; stop the demo if a file is unreadable."""
    from recsys.contract.validate import validate_dir

    console.rule("2. validate")
    result = validate_dir(data, quarantine_dir=data / "quarantine")
    total = sum(result.rows_read.values())
    console.print(
        f"{total:,} rows read, {len(result.quarantine):,} quarantined "
        f"(exit code {result.exit_code})"
    )


def train_and_promote(data: Path, target: str, seed: int) -> str | None:
    """Train the demo model for `target`, register it and promote it if it wins."""
    from training.config import load_config
    from training.promote import promote
    from training.train import run_training

    name, params = DEMO_MODELS[target]
    console.rule(f"3. train {name} for target {target}")
    cfg = load_config(
        None, data=data, target=target, model=name, params=params, seed=seed, refit_full=True
    )
    result = run_training(cfg)
    primary = result.metrics.get(cfg.primary_metric, float("nan"))
    console.print(
        f"{cfg.registered_name} v{result.model_version}: {cfg.primary_metric} = {primary:.4f}, "
        f"recall@20 = {result.metrics.get('recall_at_20', float('nan')):.4f} (run {result.run_id})"
    )
    decision = promote(target)
    console.print(decision.reason)
    return result.model_version


def publish_target(client: Any, data: Path, target: str) -> str:
    """Publish `target`'s champion (refit on all data) as the live snapshot."""
    from training.config import REGISTERED_NAMES
    from training.publish_cli import _run_publish, resolve_model

    console.rule(f"4. publish {target} picks")
    resolved = resolve_model(f"models:/{REGISTERED_NAMES[target]}@champion")
    report = _run_publish(
        client,
        target,
        resolved,
        data,
        top_n=100,
        batch_size=10_000,
        similar_k=20,
        ttl_old=7 * 86_400,
        progress=True,
    )
    console.print(
        f"snapshot {report.snapshot}: {report.n_users:,} {target}s, "
        f"{report.users_per_s:,.0f} users/s"
    )
    return str(report.snapshot)


def run_demo(data: Path, *, scale: str = "small", seed: int = 7, fresh: bool = False) -> DemoResult:
    """Everything up to a published snapshot and an API key; the caller then serves."""
    import redis

    from recsys.cache.server import resolve_redis_url
    from recsys.contract.loader import load_tables
    from serving.auth import add_key

    ensure_data(data, scale, seed, fresh)
    validate_data(data)
    out = DemoResult(data=data)
    for target in ("agent", "customer"):
        out.versions[target] = train_and_promote(data, target, seed)
    url, server = resolve_redis_url()
    out.redis_url = url
    if server is not None:
        console.print(f"[dim]started a private Redis server at {url}[/]")
    client = redis.Redis.from_url(url)
    for target in ("agent", "customer"):
        out.snapshots[target] = publish_target(client, data, target)
    out.api_key, _ = add_key(client, ["platform"], name="demo")
    out.admin_key, _ = add_key(client, ["admin"], name="demo explorer")
    tables = load_tables(data, on_quarantine="ignore")
    purchases = tables["purchases"]
    out.sample_agent = str(purchases["agent_id"].value_counts().index[0])
    out.sample_customer = str(purchases["customer_id"].value_counts().index[0])
    # Keep the server for the service that follows in this process.
    out.__dict__["_server"] = server
    return out


def print_next_steps(result: DemoResult, host: str, port: int) -> None:
    """The curl commands and where to look next."""
    from training.tracking import ui_command

    base = f"http://{host}:{port}"
    console.rule("5. serve")
    console.print("Try it (in another terminal):", style="bold")
    console.print(
        f"  curl -s -H 'X-API-Key: {result.api_key}' "
        f"'{base}/v1/agents/{result.sample_agent}/picks?k=20'",
        soft_wrap=True,
        highlight=False,
    )
    console.print(
        f"  curl -s -H 'X-API-Key: {result.api_key}' "
        f"'{base}/v1/customers/{result.sample_customer}/picks?k=10'",
        soft_wrap=True,
        highlight=False,
    )
    console.print(f"  API docs: {base}/docs   metrics: {base}/metrics", highlight=False)
    console.print(
        f"  Picks explorer: {base}/explorer (log in with the admin key {result.admin_key}; "
        "make more with `recsys keys add --scope admin`)",
        soft_wrap=True,
        highlight=False,
    )
    console.print(f"  MLflow UI: {ui_command()}", soft_wrap=True, highlight=False)


def demo_command(
    data: Path, scale: str, seed: int, fresh: bool, host: str, port: int, serve: bool
) -> None:
    """Run the demo and (unless `serve` is False) the service in the foreground."""
    if scale not in ("tiny", "small", "medium", "large"):
        fail(f"--scale must be tiny, small, medium or large, got {scale!r}", 2)
    result = run_demo(data, scale=scale, seed=seed, fresh=fresh)
    print_next_steps(result, host, port)
    if not serve:
        return
    import uvicorn

    os.environ["RECSYS_REDIS_URL"] = result.redis_url
    uvicorn.run("serving.main:create_app", factory=True, host=host, port=port, workers=1)
