"""`recsys keys add|list|revoke` against the test Redis; `recsys serve` with its own Redis."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from recsys.cache.server import free_port
from recsys.cli import app
from serving.auth import KEYS_HASH, hash_key


@pytest.fixture()
def runner(redis_url: str, redis_client: Any, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("RECSYS_REDIS_URL", redis_url)
    return CliRunner()


def test_keys_add_prints_the_key_once_and_stores_its_hash(
    runner: CliRunner, redis_client: Any
) -> None:
    result = runner.invoke(app, ["keys", "add", "--scope", "agent:a01", "--name", "a01 app"])
    assert result.exit_code == 0, result.output
    key = re.search(r"rk_[A-Za-z0-9_-]+", result.stdout).group(0)  # type: ignore[union-attr]
    assert redis_client.hexists(KEYS_HASH, hash_key(key))
    listed = runner.invoke(app, ["keys", "list"])
    assert "agent:a01" in listed.stdout and "a01 app" in listed.stdout
    assert key not in listed.stdout
    key_id = hash_key(key)[:12]
    assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
    assert redis_client.hlen(KEYS_HASH) == 0


def test_keys_commands_fail_with_a_message(runner: CliRunner) -> None:
    bad = runner.invoke(app, ["keys", "add", "--scope", "root"])
    assert bad.exit_code == 2 and "invalid scope 'root'" in bad.output
    missing = runner.invoke(app, ["keys", "revoke", "abcdefgh12"])
    assert missing.exit_code == 1 and "no key matches" in missing.output


def test_serve_without_redis_url_starts_its_own_redis(tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RECSYS_REDIS_URL")}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "recsys", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "service did not start in 30 s"
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()
        assert ready["redis"] is True and ready["snapshots"] == {}  # nothing published yet
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=20)[0].decode()
    redis_url = re.search(r"redis://127\.0\.0\.1:\d+/0", output).group(0)  # type: ignore[union-attr]
    import redis

    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(redis_url, socket_connect_timeout=0.5).ping()
