"""`recsys simulate-ab`: a closed-loop A/B experiment of simulated agents against the live service.

Without `--url` everything runs on embedded defaults: the simulated history is written into
`OUT/data`, arm A (ALS) and arm B (the ranked model) are trained and registered (or taken from
`--variant-a` / `--variant-b`), A is published to `current` and B to a channel in a private
Redis, the picks service starts on a free loopback port in this process, and the experiment is
created through its admin API. With `--url` the loop drives that service instead (its Redis
from `--redis-url` / REDIS_URL, keys from the options or the environment). Then the days are
played over HTTP (`recsys.abtest.loop`), and `recsys sink --once` and `recsys ab-report` run
as in production. docs/ab-testing.md, "Closed loop over HTTP".
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from recsys.console import console, err_console, fail, user_errors

SCALES = ("tiny", "small")
NAME_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
EVENT_STREAM = os.environ.get("RECSYS_EVENT_STREAM", "events:v1:events")
EXPOSURE_STREAM = os.environ.get("RECSYS_EXPOSURE_STREAM", "events:v1:exposures")
WINDOW_DAYS, RETURN_DAYS = 7.0, 30.0  # the report's defaults: the tail lets both close
NO_KEYS = (
    "--url needs an admin key (to create the experiment): pass --admin-key or set "
    "RECSYS_ADMIN_KEY; make one with `recsys keys add --scope admin` on the service's Redis"
)


@dataclass
class Arm:
    """One variant: the channel it is served from, its model URI and published snapshot."""

    channel: str
    uri: str
    snapshot: str = ""


def _prepare_out(out: Path, overwrite: bool) -> Path:
    """`OUT/data`, empty; refuses to mix two runs in one folder unless `overwrite`."""
    data = out / "data"
    if data.exists() and any(data.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out} already holds a run ({data}): pass --overwrite or another --out"
            )
        shutil.rmtree(data)
    out.mkdir(parents=True, exist_ok=True)
    return data


def _history(data: Path, source: Path | None, scale: str, seed: int, sets: list[str]) -> None:
    """Write the simulated history into `data` (or copy the simulated `source` there)."""
    from recsys.simulation.cli import parse_overrides
    from recsys.simulation.config import SimConfig
    from recsys.simulation.simulate import write_simulation

    if source is not None:
        if not (source / "truth").is_dir():
            raise FileNotFoundError(
                f"--data {source} has no truth/: simulate it with `recsys simulate`"
            )
        console.print(f"copying the simulated history {source} → {data}", highlight=False)
        skip = shutil.ignore_patterns("quarantine", "_sink")
        shutil.copytree(source, data, ignore=skip, dirs_exist_ok=True)
        return
    config = SimConfig.preset(scale, **parse_overrides(sets))
    summary = write_simulation(config, seed, data, overwrite=True)
    console.print(
        f"{config.n_days} days of {scale} history ({summary.rows.get('purchases', 0):,} purchase "
        f"lines, {config.n_agents} agents) in {summary.seconds:.1f} s → {data}",
        highlight=False,
    )


def _train(data: Path, model: str, seed: int) -> str:
    """Train and register `model` for agents on `data` (refit on all of it); its model URI."""
    from training.config import load_config
    from training.train import run_training

    config = load_config(None, data=data, target="agent", model=model, seed=seed, refit_full=True)
    result = run_training(config)
    primary = result.metrics.get(config.primary_metric, float("nan"))
    uri = (
        f"models:/{config.registered_name}/{result.model_version}"
        if result.model_version is not None
        else f"runs:/{result.run_id}"
    )
    console.print(
        f"{model}: {uri}, {config.primary_metric} = {primary:.4f} "
        f"({result.timings.get('total_s', 0):.0f} s)",
        highlight=False,
    )
    return uri


def _publish(client: Any, data: Path, arm: Arm) -> None:
    """Publish the arm's model for agents on its channel; sets `arm.snapshot`."""
    from training.publish_cli import _run_publish, resolve_model

    resolved = resolve_model(arm.uri)
    target = getattr(resolved.model, "target_", "agent")
    if target != "agent":
        raise ValueError(f"model {arm.uri} was trained for target {target!r}, not 'agent'")
    report = _run_publish(
        client,
        "agent",
        resolved,
        data,
        top_n=100,
        batch_size=10_000,
        similar_k=0,
        ttl_old=7 * 86_400,
        progress=False,
        channel=arm.channel,
    )
    arm.snapshot = str(report.snapshot)
    console.print(
        f"published {arm.uri} on {arm.channel!r}: snapshot {arm.snapshot}", highlight=False
    )


@contextlib.contextmanager
def _embedded_service(redis_url: str) -> Iterator[str]:
    """The picks service (uvicorn) on a free loopback port in a thread; yields its URL. On exit
    it shuts down, writing the exposures it still holds."""
    import logging

    import uvicorn

    from recsys.abtest.loop_http import ServiceError
    from recsys.cache.server import free_port
    from serving.main import create_app
    from serving.settings import Settings

    logging.getLogger("recsys.serving").setLevel(logging.WARNING)
    # the loop is the only client: no rate limit, no access log on the console
    settings = Settings(
        redis_url=redis_url, access_log=False, rate_limit_per_s=1e9, rate_limit_burst=1e9
    )
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="recsys-simulate-ab", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ServiceError(f"the picks service did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _keys(client: Any, url: str | None, given: dict[str, str | None]) -> dict[str, str]:
    """API keys: the given ones (admin stands in for the others), or new ones when embedded."""
    from serving.auth import add_key

    if url is None:
        return {
            scope: add_key(client, [scope], name=f"simulate-ab {scope}")[0]
            for scope in ("platform", "events", "admin")
        }
    admin = str(given["admin"])
    return {scope: given[scope] or admin for scope in ("platform", "events", "admin")}


def simulate_ab(
    experiment: Annotated[str, typer.Option(help="Name of the experiment to create and report.")],
    days: Annotated[int, typer.Option(help="Days the experiment serves feeds.")] = 14,
    seed: Annotated[int, typer.Option(help="Seed of the simulated world and the loop.")] = 0,
    scale: Annotated[str, typer.Option(help="Simulated world: tiny or small.")] = "tiny",
    variant_a: Annotated[
        str | None, typer.Option(help="Model URI of arm A (default: train --model-a).")
    ] = None,
    variant_b: Annotated[
        str | None, typer.Option(help="Model URI of arm B (default: train --model-b).")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Drive this running service instead of starting one.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder of the run: data/, report, logs.")] = Path(
        "var/ab-loop"
    ),
    data: Annotated[
        Path | None,
        typer.Option(help="Start from this simulated data directory (default: simulate one)."),
    ] = None,
    sim_set: Annotated[
        list[str] | None,
        typer.Option("--set", help="Simulator override KEY=VALUE (as `recsys simulate --set`)."),
    ] = None,
    model_a: Annotated[str, typer.Option(help="Model trained for arm A.")] = "als",
    model_b: Annotated[str, typer.Option(help="Model trained for arm B.")] = "ranked",
    channel_b: Annotated[str, typer.Option(help="Snapshot channel arm B is served from.")] = (
        "challenger"
    ),
    tail_days: Annotated[
        int | None,
        typer.Option(help="Days simulated after the experiment (default 37: windows + returns)."),
    ] = None,
    k: Annotated[int, typer.Option(help="Picks per feed.")] = 20,
    adoption: Annotated[
        float, typer.Option(help="Chance an agent fills a share from her feed.")
    ] = 0.7,
    redis_url: Annotated[
        str | None,
        typer.Option(help="Redis to use (default: a private one; with --url: $REDIS_URL)."),
    ] = None,
    admin_key: Annotated[
        str | None, typer.Option(envvar="RECSYS_ADMIN_KEY", help="Admin key (with --url).")
    ] = None,
    events_key: Annotated[
        str | None, typer.Option(envvar="RECSYS_EVENTS_KEY", help="Events key (with --url).")
    ] = None,
    platform_key: Annotated[
        str | None, typer.Option(envvar="RECSYS_PLATFORM_KEY", help="Platform key (with --url).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a run already in --out.")] = False,
    mlflow: Annotated[bool, typer.Option(help="Record the report as an MLflow run.")] = True,
) -> None:
    """Run simulated agents against the live picks service for --days days, then sink the
    events and write the A/B report (HTML, JSON, MLflow run)."""
    from recsys.abtest.loop import LoopSettings
    from recsys.cache.keys import check_channel

    started = time.perf_counter()
    with user_errors(extra=(OSError,)):
        if scale not in SCALES:
            fail(f"--scale must be tiny or small, got {scale!r}", 2)
        if not re.fullmatch(NAME_PATTERN, experiment):
            fail(
                f"--experiment must match {NAME_PATTERN} (as the admin API), got {experiment!r}", 2
            )
        check_channel(channel_b)
        if data is not None and sim_set:
            fail("--set changes the world simulated here; --data brings its own: give one", 2)
        settings = LoopSettings(
            days=days,
            tail_days=int(WINDOW_DAYS + RETURN_DAYS) if tail_days is None else tail_days,
            seed=seed,
            k=k,
            adoption=adoption,
            tag=f"{experiment}-{uuid.uuid4().hex[:8]}-",
        )
        if url is not None and not admin_key:
            raise ValueError(NO_KEYS)
        if url is not None and not (redis_url or os.environ.get("REDIS_URL")):
            raise ValueError(
                "--url needs the service's Redis (to publish the arms and drain its streams): "
                "pass --redis-url or set REDIS_URL"
            )
        data_dir = _prepare_out(out, overwrite)
        stages = Stages()
        with stages("history", "simulated history"):
            _history(data_dir, data, scale, seed, sim_set or [])
        with stages("arms", "arms"):
            arms = [
                Arm("current", variant_a or _train(data_dir, model_a, seed)),
                Arm(channel_b, variant_b or _train(data_dir, model_b, seed)),
            ]
        given = {"admin": admin_key, "events": events_key, "platform": platform_key}
        run = _run(experiment, settings, out, arms, url, redis_url, given, mlflow, stages)
    _print_end(out, run, time.perf_counter() - started)


class Stages:
    """The run's numbered sections on the console, each timed (seconds in loop.json)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, key: str, title: str) -> Iterator[None]:
        """Print the section's title, time what runs inside."""
        console.rule(f"{len(self.seconds) + 1}. {title}")
        self.seconds[key] = 0.0
        begun = time.perf_counter()
        yield
        self.seconds[key] = round(time.perf_counter() - begun, 1)


def _private_redis(stack: contextlib.ExitStack) -> str:
    """Start a private Redis that stops with `stack`; its URL."""
    from recsys.cache.server import start_redis_server
    from recsys.exceptions import RecsysError

    try:
        server = start_redis_server()
    except RuntimeError as exc:  # no redis-server binary, or it would not start
        raise RecsysError(str(exc)) from None
    stack.callback(server.stop)
    console.print(f"[dim]started a private Redis at {server.url}[/]", highlight=False)
    return server.url


def _serve_and_play(
    experiment: Any, settings: Any, data_dir: Path, arms: list[Arm], url: str | None,
    redis_url: str, keys: dict[str, str],
) -> Any:  # fmt: skip
    """Start the experiment on the service (started here unless `url`), play, switch it off."""
    from recsys.abtest.loop import play
    from recsys.abtest.loop_http import ServiceClient
    from recsys.abtest.loop_world import resume_world

    with console.status("replaying the simulated history to where its logs end"):
        sim = resume_world(data_dir)
    with contextlib.ExitStack() as serving:
        service_url = url or serving.enter_context(_embedded_service(redis_url))
        client = ServiceClient(service_url, **{f"{s}_key": keys[s] for s in keys})
        serving.callback(client.close)
        client.put_experiment(experiment)
        # Off again at the end (kept in Redis, where its report can read it): the service goes
        # back to serving `current` to everybody, and another experiment may start.
        serving.callback(client.disable_experiment, experiment)
        a, b = arms
        console.print(
            f"experiment {experiment.name!r} runs on {service_url}: A ← {a.uri} ({a.channel}), "
            f"B ← {b.uri} ({b.channel})",
            highlight=False,
        )
        client.wait_for_snapshots({f"agent:{arm.channel}": arm.snapshot for arm in arms})
        record = play(sim, client, settings, progress=True)
    if url is not None:
        time.sleep(1.0)  # a running service writes its buffered exposures every 0.2 s
    return record


def _run(
    name: str, settings: Any, out: Path, arms: list[Arm], url: str | None,
    redis_url: str | None, given: dict[str, str | None], mlflow: bool, stages: Stages,
) -> dict[str, Any]:  # fmt: skip
    """Publish, serve and play, sink, retime, report; returns the run's summary (loop.json)."""
    import yaml

    from recsys.abtest.loop import feed_values, make_experiment, sink_group
    from recsys.abtest.loop_clock import retime_exposures
    from recsys.cache.connect import connect
    from training.ab_report_cli import ab_report
    from training.sink_cli import sink

    data_dir = out / "data"
    with contextlib.ExitStack() as stack:
        if url is None and redis_url is None:
            redis_url = _private_redis(stack)
        redis_url = redis_url or os.environ["REDIS_URL"]
        client = connect(redis_url, socket_connect_timeout=5, socket_timeout=60)
        with stages("publish", "publish the arms"):
            for arm in arms:
                _publish(client, data_dir, arm)
        keys = _keys(client, url, given)
        group = f"simulate-ab-{settings.tag.rstrip('-')}"
        streams = (EVENT_STREAM, EXPOSURE_STREAM)
        sink_group(client, group, streams, create=True)
        stack.callback(sink_group, client, group, streams, create=False)
        experiment = make_experiment(name, settings.seed, [(a.channel, a.uri) for a in arms])
        (out / "experiments.yaml").write_text(
            yaml.safe_dump({"experiments": [experiment.model_dump(mode="json")]}, sort_keys=False)
        )
        title = f"serve and play {settings.days} + {settings.tail_days} days"
        with stages("play", title):
            record = _serve_and_play(experiment, settings, data_dir, arms, url, redis_url, keys)
        requests = record.requests_frame()
        requests.to_parquet(out / "requests.parquet")
        record.posted_frame().to_parquet(out / "posted.parquet")
        with stages("sink", "sink"):
            sink(data=data_dir, redis_url=redis_url, once=True, fold=True, group=group)
            retimed = retime_exposures(data_dir, record.clock(), experiment=name)
            console.print(
                f"{retimed.moved:,} exposures moved to the simulated time of their feed",
                highlight=False,
            )
            if retimed.missing or retimed.strays:
                err_console.print(
                    f"[yellow]warning:[/] {retimed.missing} feeds have no exposure in "
                    f"{data_dir / 'exposures'}, and {retimed.strays} exposures of {name!r} are "
                    "not the loop's feeds (they keep the service's time)",
                    highlight=False,
                )
        with stages("report", "report"):
            values = feed_values(data_dir, requests)
            ab_report(
                experiment=name,
                data=data_dir,
                out=out / "report.html",
                experiments_file=out / "experiments.yaml",
                mlflow=mlflow,
            )
    summary = {
        "experiment": experiment.model_dump(mode="json"),
        "settings": dataclasses.asdict(settings),
        "service": url or "embedded",
        "arms": [dataclasses.asdict(a) for a in arms],
        "feeds": requests["variant"].value_counts().to_dict(),
        "events": record.posted_frame()["kind"].value_counts().to_dict(),
        "rejected": record.rejected[:20],
        "n_rejected": len(record.rejected),
        "exposures_retimed": dataclasses.asdict(retimed),
        "true_value_per_served_sku": values,
        "seconds": stages.seconds,
        "days": record.days,
    }
    (out / "loop.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _print_end(out: Path, run: dict[str, Any], seconds: float) -> None:
    """Where the report is, how to open it and the MLflow UI."""
    from training.tracking import ui_command

    html = (out / "report.html").resolve()
    values = run["true_value_per_served_sku"]
    if values:
        console.print(
            "true value of a served SKU (expected kept units within 7 days if shared): "
            + ", ".join(f"{v} {x:.3f}" for v, x in values.items()),
            highlight=False,
        )
    if run["n_rejected"]:
        err_console.print(
            f"[yellow]warning:[/] the service refused {run['n_rejected']} events; "
            f"reasons in {out / 'loop.json'}",
            highlight=False,
        )
    console.rule(f"done in {seconds:.0f} s")
    console.print(f"report:   {html}", soft_wrap=True, highlight=False)
    console.print(
        f"open it:  python -m webbrowser file://{html}   (or open file://{html} in a browser)",
        soft_wrap=True,
        highlight=False,
    )
    console.print(
        f"MLflow:   {ui_command()}  → experiment 'ab-reports'", soft_wrap=True, highlight=False
    )
    console.print(
        f"again:    recsys ab-report --experiment {run['experiment']['name']} --data "
        f"{out / 'data'} --experiments-file {out / 'experiments.yaml'} --out {out / 'report.html'}",
        soft_wrap=True,
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add `simulate-ab` to the `recsys` app."""
    app.command("simulate-ab")(simulate_ab)
