"""`recsys sink`: drain the events and exposures streams into a data directory's Parquet tables."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from recsys.console import console, err_console, fail, progress_columns, user_errors

NO_REDIS = (
    "no Redis to read events from: pass --redis-url redis://HOST:6379/0 (or "
    "redis+cluster://HOST:PORT[,HOST:PORT] for a Redis Cluster) or set REDIS_URL "
    "(the service's Redis: the one `recsys serve` printed)"
)


def _connect(url: str | None) -> Any:
    """A client for `url` (else RECSYS_REDIS_URL, else REDIS_URL) that answered PING; a
    `redis+cluster://` URL gives a Redis Cluster client."""
    from recsys.cache.connect import connect, redact_url, redis_failures

    url = url or os.environ.get("RECSYS_REDIS_URL") or os.environ.get("REDIS_URL")
    if not url:
        raise ValueError(NO_REDIS)
    try:
        # Reads block for up to `--block-ms`; the socket timeout must outlast them.
        client = connect(url, socket_connect_timeout=5, socket_timeout=60)
        client.ping()
    except (*redis_failures(), ValueError) as exc:
        raise ValueError(f"cannot reach Redis at {redact_url(url)}: {exc}") from None
    return client


def _is_outage(exc: BaseException) -> bool:
    """True for errors a running sink waits out: Redis, or a cluster master, restarting or
    failing over. A cluster client that reaches no node raises a bare `RedisClusterException`
    caused by the connection error; its other uses (a bug such as keys of two slots) are not."""
    from redis.exceptions import (
        ClusterDownError,
        ConnectionError,
        RedisClusterException,
        SlotNotCoveredError,
        TimeoutError,
        TryAgainError,
    )

    transient = (ConnectionError, TimeoutError, ClusterDownError, TryAgainError)
    if isinstance(exc, (*transient, SlotNotCoveredError)):
        return True
    return isinstance(exc, RedisClusterException) and isinstance(
        exc.__cause__, (*transient, OSError)
    )


def _print_prepared(prepared: Any, data: Path) -> None:
    for source, target in prepared.folded:
        console.print(f"moved {source} → {target} (one form per table)", highlight=False)
    if prepared.created_empty:
        console.print(
            f"created empty {', '.join(prepared.created_empty)} so {data} loads before the "
            "first such event",
            highlight=False,
        )
    if prepared.removed_temporaries:
        console.print(f"removed {prepared.removed_temporaries} unfinished part(s) of a killed sink")
    if prepared.missing_catalogue:
        err_console.print(
            f"[yellow]note:[/] {data} has no {', '.join(prepared.missing_catalogue)} yet; "
            "`recsys train` needs them next to the events (docs/events.md)",
            highlight=False,
        )


def _summary(sink: Any, seconds: float) -> None:
    from rich.table import Table

    from recsys.events.kinds import SINK_TABLES

    counts = sink.counts
    table = Table("table", title="Sink")
    table.add_column("rows written", justify="right")
    table.add_column("duplicates skipped", justify="right")
    for name in SINK_TABLES:
        table.add_row(name, f"{counts.rows[name]:,}", f"{counts.duplicates[name]:,}")
    console.print(table)
    console.print(
        f"{counts.entries:,} entries in {counts.batches} batch(es), {counts.parts} part file(s), "
        f"{seconds:.1f} s; lag now: "
        + ", ".join(f"{lag.stream} {lag.describe()}" for lag in sink.lag()),
        highlight=False,
    )
    if counts.trimmed:
        err_console.print(
            f"[yellow]warning:[/] {counts.trimmed} pending entries had been trimmed from their "
            "stream (MAXLEN) before they could be written"
        )
    if counts.rejected:
        err_console.print(
            f"[yellow]warning:[/] {counts.rejected} entries failed the checks; each is in "
            f"{sink.rejected_path} with its reason",
            highlight=False,
        )


def _drain(sink: Any) -> None:
    """`--once`: empty both streams with a progress bar, then print what was written."""
    from rich.progress import Progress

    started = time.perf_counter()
    total = sum(lag.entries for lag in sink.lag())
    with Progress(*progress_columns(), console=err_console, transient=True) as bar:
        task = bar.add_task("draining streams", total=total or None)
        sink.drain(on_batch=lambda n: bar.advance(task, n))
    _summary(sink, time.perf_counter() - started)


def _run(sink: Any, block_ms: int, status_every_s: float, lag_every_s: float) -> None:
    """Run until SIGINT/SIGTERM; the batch in hand is finished (written and acked) first."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    started = last_status = last_lag = time.monotonic()
    lags = sink.lag()
    backoff = 0.0
    while not stop.is_set():
        try:
            sink.step(block_ms=block_ms)
            now = time.monotonic()
            if now - last_lag >= lag_every_s:
                lags, last_lag = sink.lag(), now
            backoff = 0.0
        except Exception as exc:
            if not _is_outage(exc):
                raise
            # A long-running sink outlives a Redis restart: unacknowledged entries stay pending.
            backoff = min(10.0, max(0.5, backoff * 2))
            err_console.print(f"[yellow]Redis unreachable ({exc}); retrying in {backoff:.1f} s")
            stop.wait(backoff)
            continue
        if now - last_status >= status_every_s:
            last_status = now
            counts = sink.counts
            console.print(
                f"{time.strftime('%H:%M:%S')} {counts.entries:,} entries, "
                f"{sum(counts.rows.values()):,} rows, "
                f"{sum(counts.duplicates.values()):,} duplicates, {counts.rejected} rejected; lag "
                + ", ".join(f"{lag.stream} {lag.describe()}" for lag in lags),
                highlight=False,
            )
    _summary(sink, time.monotonic() - started)


def sink(
    data: Annotated[
        Path, typer.Option("--data", help="Data directory to write into (created if missing).")
    ],
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="Redis of the service (default: REDIS_URL); a cluster: redis+cluster://h:p,h:p"
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Drain what is there, print a summary and exit.")
    ] = False,
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="Entries read per stream.")] = 1000,
    group: Annotated[str, typer.Option(help="Consumer group (one per destination).")] = (
        "parquet-sink"
    ),
    consumer: Annotated[
        str | None, typer.Option(help="Consumer name; keep it across restarts (default: host).")
    ] = None,
    claim_idle_s: Annotated[
        float,
        typer.Option(min=0, help="Take over entries another consumer left pending this long."),
    ] = 60.0,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics (recsys_sink_lag...) here.")
    ] = None,
    fold: Annotated[
        bool,
        typer.Option("--fold", help="Move single-file event tables into their folder form."),
    ] = False,
    event_stream: Annotated[
        str, typer.Option(envvar="RECSYS_EVENT_STREAM", help="Stream of posted events.")
    ] = "events:v1:events",
    exposure_stream: Annotated[
        str, typer.Option(envvar="RECSYS_EXPOSURE_STREAM", help="Stream of served exposures.")
    ] = "events:v1:exposures",
    block_ms: Annotated[
        int, typer.Option(min=10, max=30_000, help="How long a read waits for new entries.")
    ] = 2000,
    status_every_s: Annotated[
        float, typer.Option(min=0.1, help="Status line interval when running.")
    ] = 30.0,
    lag_every_s: Annotated[
        float, typer.Option(min=0.1, help="How often the lag metrics are measured.")
    ] = 5.0,
) -> None:
    """Write posted events and served exposures to date-partitioned Parquet under --data, where
    `recsys train --data` reads them; at least once, each event id written once."""
    from recsys.cache.connect import redis_failures
    from recsys.events.layout import SinkLock, prepare_data_dir
    from recsys.events.metrics import SinkMetrics
    from recsys.events.sink import Sink

    with contextlib.ExitStack() as stack:
        with user_errors(code=2, extra=(OSError,)):
            client = _connect(redis_url)
            stack.enter_context(SinkLock(data))
            prepared = prepare_data_dir(data, fold=fold)
        _print_prepared(prepared, data)
        metrics = SinkMetrics()
        if metrics_port is not None:
            from prometheus_client import start_http_server

            with user_errors(code=2, extra=(OSError,)):
                start_http_server(metrics_port, registry=metrics.registry)
            console.print(f"metrics on http://0.0.0.0:{metrics_port}/metrics")
        worker = Sink(
            client,
            data,
            event_stream=event_stream,
            exposure_stream=exposure_stream,
            group=group,
            consumer=consumer or f"sink@{socket.gethostname()}",
            batch=batch,
            claim_idle_s=claim_idle_s,
            metrics=metrics,
        )
        try:
            with user_errors(code=1, extra=(OSError,)):
                worker.start()
                if once:
                    _drain(worker)
                else:
                    console.print(
                        f"sinking {event_stream} and {exposure_stream} into {data} "
                        f"(group {group}); Ctrl-C stops after the batch in hand",
                        highlight=False,
                    )
                    _run(worker, block_ms, status_every_s, lag_every_s)
        except redis_failures() as exc:
            fail(
                f"Redis error: {exc}; entries not yet acknowledged are read again when the "
                "sink restarts"
            )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `recsys` app."""
    app.command("sink")(sink)
