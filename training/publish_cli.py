"""`recsys publish` and `recsys rollback`: put a registered model's picks live in Redis."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from recsys.columns import Columns
from recsys.console import console, fail, user_errors

NO_REDIS = (
    "no Redis to publish to: pass --redis-url redis://HOST:6379/0 (a Redis Cluster: "
    "redis+cluster://HOST:PORT[,HOST:PORT]) or set REDIS_URL. "
    "To start one locally: `redis-server --port 6379 --save ''` (then "
    "REDIS_URL=redis://127.0.0.1:6379/0), or `docker run -p 6379:6379 redis:7`."
)
URI_FORMS = "models:/<name>@<alias>, models:/<name>/<version>, runs:/<run_id> or a model folder"


@dataclass
class ResolvedModel:
    """A loaded recommender and where it came from."""

    model: Any
    uri: str
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    fit: str = "unknown"


REDIS_URL_HELP = (
    "Redis URL (default: $REDIS_URL); redis+cluster://HOST:PORT[,HOST:PORT] for a Redis Cluster."
)


def snapshot_meta(resolved: ResolvedModel, data: Path | str) -> dict[str, Any]:
    """The snapshot meta fields that say which model, run and data made the picks."""
    return {
        "model_name": resolved.tags.get("model_name") or getattr(resolved.model, "name", None),
        "registered_name": resolved.name,
        "model_version": resolved.version,
        "run_id": resolved.run_id,
        "model_uri": resolved.uri,
        "model_fit": resolved.fit,
        "config_digest": resolved.tags.get("config_digest"),
        "data_fingerprint": resolved.tags.get("data_fingerprint"),
        "data_dir": str(data),
    }


def connect_redis(url: str | None) -> Any:
    """A client for `url` (else REDIS_URL) that answered PING; ValueError with advice if not.

    `redis+cluster://` URLs give a cluster client (`recsys.cache.connect`).
    """
    from recsys.cache.connect import connect, redact_url, redis_failures

    url = url or os.environ.get("REDIS_URL")
    if not url:
        raise ValueError(NO_REDIS)
    try:
        client = connect(url, socket_connect_timeout=5, socket_timeout=60)
        client.ping()
    except (*redis_failures(), ValueError) as exc:
        raise ValueError(f"cannot reach Redis at {redact_url(url)}: {exc}") from None
    return client


def parse_model_uri(uri: str) -> tuple[str, str, str]:
    """Split a model URI into (kind, name or run id, alias or version); kind is alias|version|run.

    Raises
    ------
    ValueError
        If the URI is not one of the accepted forms.
    """
    if uri.startswith("models:/"):
        ref = uri[len("models:/") :]
        name, sep, alias = ref.partition("@")
        if sep and name and alias:
            return "alias", name, alias
        name, sep, number = ref.partition("/")
        if sep and name and number.isdigit():
            return "version", name, number
    elif uri.startswith("runs:/"):
        run_id = uri[len("runs:/") :].split("/", 1)[0]
        if run_id:
            return "run", run_id, ""
    raise ValueError(f"unknown model URI {uri!r}; use {URI_FORMS}")


def resolve_model(uri: str) -> ResolvedModel:
    """Load the recommender behind `uri`, preferring the run's refit-on-all-data model.

    Raises
    ------
    ValueError
        If the URI has an unknown form, or names a model, alias, version or run that does
        not exist.
    """
    from recsys.models.base import BaseRecommender

    folder = Path(uri)
    if folder.is_dir() and (folder / "model.pkl").is_file():
        return ResolvedModel(BaseRecommender.load(folder), uri=str(folder), fit="folder")
    kind, ref, which = parse_model_uri(uri)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from training.registry import FULL_MODEL_ARTIFACT, get_version, load_recommender
    from training.tracking import configure_tracking

    tracking = configure_tracking()
    name = version = None
    try:
        run_id = ref
        if kind != "run":
            name = ref
            if kind == "alias":
                found = get_version(name, which)
                if found is None:
                    raise ValueError(
                        f"no version of model {name!r} has alias @{which} in MLflow at "
                        f"{tracking}: train one (`recsys train`) and promote it "
                        "(`recsys promote`), or pass --model"
                    )
            else:
                found = MlflowClient().get_model_version(name, which)
            version, run_id = str(found.version), str(found.run_id)
        client = MlflowClient()
        run = client.get_run(run_id)
        full = client.list_artifacts(run_id, FULL_MODEL_ARTIFACT)
        model = load_recommender(run_id, prefer_full=True)
    except MlflowException as exc:
        raise ValueError(f"cannot load model {uri!r} from MLflow at {tracking}: {exc}") from None
    return ResolvedModel(
        model,
        uri=uri,
        name=name,
        version=version,
        run_id=run_id,
        params=dict(run.data.params),
        tags=dict(run.data.tags),
        fit="full" if full else "holdout",
    )


def publish(
    target: Annotated[str, typer.Option(help="agent or customer.")] = "agent",
    model: Annotated[
        str | None,
        typer.Option(help=f"{URI_FORMS} (default: models:/item-to-<target>@champion)."),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Data directory (default: the run's `data` parameter); a URI with --engine spark."
        ),
    ] = None,
    redis_url: Annotated[str | None, typer.Option(help=REDIS_URL_HELP)] = None,
    top_n: Annotated[int, typer.Option(help="Picks per user.")] = 100,
    batch_size: Annotated[int, typer.Option(help="Users scored per batch.")] = 10_000,
    similar_k: Annotated[int, typer.Option(help="Similar SKUs per SKU (0 = none).")] = 20,
    ttl_old_days: Annotated[float, typer.Option(help="Days older snapshots are kept.")] = 7.0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    channel: Annotated[
        str, typer.Option(help='Pointer to flip: "current", or an A/B channel such as challenger.')
    ] = "current",
    engine: Annotated[
        str, typer.Option(help="local, or spark: executors score and write (docs/spark.md).")
    ] = "local",
    spark_master: Annotated[
        str, typer.Option(help="Spark master URL (--engine spark): local[*], spark://HOST:7077...")
    ] = "local[*]",
    spark_conf: Annotated[
        list[str] | None, typer.Option(help="Spark setting key=value, repeatable (--engine spark).")
    ] = None,
    profiles: Annotated[
        bool,
        typer.Option(
            help="Write the picks explorer's agent profiles and SKU return figures (agent "
            "snapshots; about 350 bytes per agent in Redis). --no-profiles leaves them out."
        ),
    ] = True,
) -> None:
    """Score every agent (or customer) and publish the picks to Redis as the live snapshot."""
    from recsys.cache.connect import redis_failures
    from training.config import REGISTERED_NAMES

    with user_errors(extra=redis_failures()):
        if target not in REGISTERED_NAMES:
            fail(f"--target must be one of {', '.join(REGISTERED_NAMES)}, got {target!r}", 2)
        if engine not in ("local", "spark"):
            fail(f"--engine must be local or spark, got {engine!r}", 2)
        client = connect_redis(redis_url)
        uri = model or f"models:/{REGISTERED_NAMES[target]}@champion"
        resolved = resolve_model(uri)
        model_target = getattr(resolved.model, "target_", target)
        if model_target != target:
            fail(f"model {uri} was trained for target {model_target!r}, not {target!r}", 2)
        location = data or resolved.params.get("data")
        if location is None:
            fail(f"model {uri} does not record its data directory: pass --data", 2)
        if engine == "spark":
            from training.spark.publish import publish_command

            report = publish_command(
                redis_url or os.environ["REDIS_URL"],  # connect_redis found one
                target,
                resolved,
                location,
                master=spark_master,
                spark_conf=spark_conf,
                top_n=top_n,
                batch_size=batch_size,
                similar_k=similar_k,
                ttl_old=int(ttl_old_days * 86_400),
                channel=channel,
                profiles=profiles,
            )
        else:
            data_dir = Path(location)
            if not data_dir.exists():
                fail(f"data directory not found: {data_dir}", 2)
            report = _run_publish(
                client,
                target,
                resolved,
                data_dir,
                top_n=top_n,
                batch_size=batch_size,
                similar_k=similar_k,
                ttl_old=int(ttl_old_days * 86_400),
                progress=progress,
                channel=channel,
                profiles=profiles,
            )
    per_user = report.bytes_picks / max(report.n_users, 1)
    console.print(
        f"[green]published[/] {target} snapshot [bold]{report.snapshot}[/] on {channel!r} "
        f"(replaced {report.replaced or 'nothing'})"
    )
    console.print(
        f"{report.n_users} users ({report.n_users_without_picks} without picks), "
        f"{report.n_picks} picks, {per_user:.0f} B per user, {report.n_fallback_lists} fallback "
        f"lists, {report.n_similar} similar-SKU lists; {report.seconds:.1f}s "
        f"({report.users_per_s:,.0f} users/s)"
    )
    if report.timings:
        times = ", ".join(f"{k} {v:.1f}s" for k, v in report.timings.items())
        console.print(f"timings: {times}")
    if report.expiring:
        console.print(f"older snapshots expiring: {', '.join(report.expiring)}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def _run_publish(
    client: Any,
    target: str,
    resolved: ResolvedModel,
    data_dir: Path,
    *,
    top_n: int,
    batch_size: int,
    similar_k: int,
    ttl_old: int,
    progress: bool,
    channel: str = "current",
    profiles: bool = True,
) -> Any:
    """Load the tables, build the publish inputs and publish."""
    try:
        from recsys.contract.loader import load_tables
    except ImportError:
        fail("the table loader (recsys.contract.loader) is not available in this checkout", 1)
    from training.publish import publish_snapshot
    from training.publish_inputs import (
        build_fallbacks,
        build_history,
        build_sku_table,
        user_ids,
        user_regions,
    )
    from training.publish_profiles import build_agent_profiles, build_sku_stats

    console.print(
        f"publishing {target} picks of {resolved.uri} ({resolved.fit} fit) from {data_dir}"
    )
    tables = load_tables(data_dir, on_quarantine="warn")
    sku_table = build_sku_table(tables)
    with_profiles = profiles and target == "agent"
    meta = snapshot_meta(resolved, data_dir)
    return publish_snapshot(
        client,
        target,
        resolved.model,
        user_ids(tables, target),
        sku_table=sku_table,
        fallbacks=build_fallbacks(tables, target, k=top_n),
        meta=meta,
        top_n=top_n,
        batch_size=batch_size,
        ttl_old=ttl_old,
        progress=progress,
        history=build_history(tables, target, sku_table[Columns.SKU_ID].to_numpy()),
        regions=user_regions(tables, target),
        similar_k=similar_k,
        channel=channel,
        # who each agent is, and how often each SKU comes back: for the picks explorer
        profiles=build_agent_profiles(tables) if with_profiles else None,
        sku_stats=build_sku_stats(tables) if with_profiles else None,
    )


def rollback(
    target: Annotated[str, typer.Option(help="agent or customer.")] = "agent",
    redis_url: Annotated[str | None, typer.Option(help=REDIS_URL_HELP)] = None,
) -> None:
    """Make the previous snapshot live again (the current one becomes the previous)."""
    from recsys.cache.connect import redis_failures
    from training.publish import rollback as run_rollback

    with user_errors(extra=redis_failures()):
        client = connect_redis(redis_url)
        result = run_rollback(client, target)
    console.print(
        f"[green]rolled back[/] {target}: live snapshot is now [bold]{result.current}[/] "
        f"(was {result.replaced or 'none'})"
    )


def register(app: typer.Typer) -> None:
    """Add `publish` and `rollback` to the `recsys` app."""
    app.command()(publish)
    app.command()(rollback)
