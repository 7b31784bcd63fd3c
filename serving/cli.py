"""Service commands: `recsys serve` and `recsys keys add|revoke|list`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from recsys.console import console, err_console, fail, user_errors

keys_app = typer.Typer(help="API keys of the picks service (stored hashed in Redis).")


def redis_url_from_env() -> str | None:
    """`RECSYS_REDIS_URL`, else `REDIS_URL`, else None (redis://, rediss://, with auth)."""
    return os.environ.get("RECSYS_REDIS_URL") or os.environ.get("REDIS_URL") or None


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes.")] = 1,
    redis_port: Annotated[
        int | None,
        typer.Option(help="Port of the Redis started when no REDIS_URL is set (default: free)."),
    ] = None,
) -> None:
    """Serve the picks API; without REDIS_URL a private Redis server is started and used."""
    import uvicorn

    from recsys.cache.server import start_redis_server
    from serving.settings import get_settings

    url = redis_url_from_env()
    server = None
    if url is None:
        with user_errors(extra=(RuntimeError,)):
            server = start_redis_server(port=redis_port)
        url = server.url
        err_console.print(
            f"no REDIS_URL set: started a private Redis at {url} (it stops with the service; "
            f"publish into it with REDIS_URL={url})",
            soft_wrap=True,
            highlight=False,
        )
    # Workers are separate processes: they read the URL from the environment.
    os.environ["RECSYS_REDIS_URL"] = url
    get_settings.cache_clear()
    console.print(
        f"serving on http://{host}:{port} with {workers} worker(s); try\n"
        f"  curl -H 'X-API-Key: <key from `recsys keys add --scope platform`>' "
        f"'http://{host}:{port}/v1/agents/<agent_id>/picks?k=20'\n"
        f"  picks explorer: http://{host}:{port}/explorer "
        "(log in with a key from `recsys keys add --scope admin`)",
        soft_wrap=True,
        highlight=False,
    )
    try:
        uvicorn.run(
            "serving.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,  # the app writes its own JSON access log with request ids
            log_level="info",
        )
    finally:
        if server is not None:
            server.stop()


def _client():  # type: ignore[no-untyped-def]
    from recsys.cache.connect import connect
    from serving.settings import Settings

    url = redis_url_from_env() or Settings().redis_url
    return connect(url, socket_connect_timeout=2, socket_timeout=5), url


def _connected(call):  # type: ignore[no-untyped-def]
    """Run `call(client)`, turning a Redis connection failure into a one-line error."""
    import redis

    client, url = _client()
    try:
        return call(client)
    except (redis.exceptions.ConnectionError, redis.exceptions.RedisClusterException) as exc:
        fail(f"cannot reach Redis at {url.split('@')[-1]} (set REDIS_URL): {exc}")
    finally:
        client.close()


@keys_app.command("add")
def keys_add(
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="platform | agent:<agent_id> | events | admin (repeatable)."),
    ],
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
) -> None:
    """Make a key with the given scopes and print it once (only its hash is kept)."""
    from serving.auth import add_key

    with user_errors(code=2):
        key, record = _connected(lambda c: add_key(c, scope, name=name))
    console.print(f"key id {record.key_id} scopes {', '.join(record.scopes)}", highlight=False)
    err_console.print("the key is shown only now; store it safely:")
    typer.echo(key)


@keys_app.command("revoke")
def keys_revoke(
    key_or_id: Annotated[str, typer.Argument(help="The key itself, or its id (8+ characters).")],
) -> None:
    """Revoke a key (every worker stops accepting it within the key cache TTL)."""
    from serving.auth import revoke_key

    with user_errors(code=2):
        n = _connected(lambda c: revoke_key(c, key_or_id))
    if n == 0:
        fail(f"no key matches {key_or_id!r}")
    console.print(f"revoked {n} key")


@keys_app.command("list")
def keys_list() -> None:
    """List the keys: id, scopes, name, creation time (never the keys themselves)."""
    from datetime import UTC, datetime

    from rich.table import Table

    from serving.auth import list_keys

    records = _connected(list_keys)
    table = Table("id", "scopes", "name", "created (UTC)")
    for r in records:
        created = datetime.fromtimestamp(r.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(r.key_id, ", ".join(r.scopes), r.name, created)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the `recsys` app."""
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
