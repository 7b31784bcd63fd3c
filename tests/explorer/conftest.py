"""Explorer fixtures: the published world, settings with a reports folder, a logged-in client."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette: "install httpx2" (the client still works)
    from fastapi.testclient import TestClient

from serving.settings import Settings
from tests.explorer.world import Published, publish_world, write_reports
from tests.serving.conftest import make_settings, serve, wait_for

TOKEN = re.compile(r'name="(token|csrf)" value="([^"]+)"')
CARD = re.compile(r'<article class="card( overlap)?" data-sku="([^"]+)">(.*?)</article>', re.S)


def cards(html: str) -> list[tuple[str, bool, str]]:
    """(sku id, highlighted as overlap, inner HTML) of every card, in page order."""
    return [(m.group(2), bool(m.group(1)), m.group(3)) for m in CARD.finditer(html)]


def form_token(html: str, name: str = "csrf") -> str:
    """The value of a hidden `token` or `csrf` input in a page."""
    found = dict((m.group(1), m.group(2)) for m in TOKEN.finditer(html))
    return found[name]


def login(client: TestClient, key: str, next_url: str = "/explorer/") -> Any:
    """Post the login form the way a browser does (with the form's token); the response."""
    page = client.get("/explorer/login", params={"next": next_url})
    token = form_token(page.text, "token")
    return client.post(
        "/explorer/login",
        data={"api_key": key, "token": token, "next": next_url},
        follow_redirects=False,
    )


@pytest.fixture()
def world(redis_client: Any) -> Published:
    """The explorer world published into the (flushed) test Redis."""
    return publish_world(redis_client)


@pytest.fixture()
def reports_dir(tmp_path: Path) -> tuple[Path, list[str]]:
    """A reports folder with two A/B reports (paths newest first)."""
    root = tmp_path / "reports"
    return root, write_reports(root)


@pytest.fixture()
def settings(redis_url: str, world: Published, reports_dir: tuple[Path, list[str]]) -> Settings:
    """Service settings on the test Redis with the reports folder."""
    return make_settings(
        redis_url, reports_dir=reports_dir[0], mlflow_ui_url="http://mlflow.test:5000/"
    )


@pytest.fixture()
def app_client(settings: Settings) -> Iterator[TestClient]:
    """A client on a running app, not logged in, once both channels are loaded."""
    with serve(settings) as client:
        live = client.app.state.services.live  # type: ignore[attr-defined]
        wait_for(lambda: live.snapshot("agent", "challenger") is not None)
        yield client


@pytest.fixture()
def admin(app_client: TestClient, world: Published) -> TestClient:
    """The client logged in with the admin key."""
    response = login(app_client, world.admin_key)
    assert response.status_code == 303, response.text
    return app_client
