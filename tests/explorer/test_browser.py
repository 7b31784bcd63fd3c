"""End to end in a real headless Chromium (Debian's, driven by Playwright) against the app on
loopback: log in, look up an agent, read her cards, compare two variants, lift a suspension.

The run saves a screenshot of an agent's page to docs/img/explorer.png (shown in the README).
Without /usr/bin/chromium these tests fail and say how to install it: they never skip.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from recsys.cache.keys import SUSPENDED
from serving.main import create_app
from serving.settings import Settings
from tests.explorer.world import SUSPENDED_SKU, TITLE_WITH_SCRIPT, Published

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "explorer.png"
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def base_url(settings: Settings) -> Iterator[str]:
    """The app served by uvicorn on a loopback port (in a thread), once both channels loaded."""
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="explorer-e2e", daemon=True)
    thread.start()
    live = app.state.services.live
    deadline = time.monotonic() + 10
    while not (server.started and live.snapshot("agent", "challenger")):
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the app did not start on loopback within 10 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def require_chromium(path: Path) -> None:
    """Fail the test (never skip it) with the install command when Chromium is missing."""
    if not path.exists():
        pytest.fail(
            f"Chromium is not installed at {path}: the explorer's browser tests need it. "
            "Install Debian's package with `apt-get install -y chromium` (CI's .ci/run does)."
        )


@pytest.fixture()
def browser_page() -> Iterator[Any]:
    """A page in headless Chromium; fails (not skips) when Chromium or Playwright is missing."""
    require_chromium(CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package `playwright` is missing: pip install -e '.[dev]'")
    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(10_000)
        try:
            yield page
        finally:
            browser.close()


def test_merchandiser_checks_an_agent_compares_and_lifts_a_suspension(
    base_url: str, browser_page: Any, world: Published, redis_client: Any
) -> None:
    page = browser_page
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", on_dialog)

    # Log in (the page first sends us to the form), then look up an agent.
    page.goto(f"{base_url}/explorer/")
    assert page.url.startswith(f"{base_url}/explorer/login")
    page.fill("#api_key", world.admin_key)
    page.click("form[action='/explorer/login'] button")
    page.wait_for_url(f"{base_url}/explorer/")
    assert page.locator("#snapshot-agent .model-version").inner_text() == "3"
    page.fill("#agent-search", "a00")
    page.press("#agent-search", "Enter")
    page.wait_for_url(f"{base_url}/explorer/agents/a00")

    # k cards, each with its reasons in plain words.
    page.fill("#k", "6")
    page.click(".feed-top button")
    page.wait_for_url("**/explorer/agents/a00?k=6")
    cards = page.locator(".feed .card")
    assert cards.count() == 6
    for i in range(6):
        reasons = cards.nth(i).locator(".reasons li").all_inner_texts()
        assert reasons and all(r.strip() for r in reasons)
    assert page.locator(".profile .region").inner_text() == "north"
    assert "Variant" in page.locator(".variant").inner_text()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000

    # The two variants side by side, the shared SKUs highlighted.
    page.click("text=Compare variants or snapshots")
    page.wait_for_url("**/explorer/agents/a00/compare?k=6")
    page.fill("#k", "7")
    page.click(".compare-form button")
    page.wait_for_url("**/compare?left=channel%3Acurrent&right=channel%3Achallenger&k=7")
    left = page.locator(".side").nth(0).locator(".card")
    right = page.locator(".side").nth(1).locator(".card")
    assert (left.count(), right.count()) == (7, 7)
    overlap = page.locator(".compare .card.overlap")
    assert sorted(set(overlap.evaluate_all("els => els.map(e => e.dataset.sku)"))) == [
        "s04",
        "s11",
    ]
    page.locator(".side").nth(0).locator(".card[data-sku='s11']").hover()
    assert page.locator(".card.twin").count() == 2  # the script points at its twin

    # A title with markup is text, and no script of it ran.
    title = page.locator(".side").nth(0).locator(".card[data-sku='s05'] .title")
    assert title.inner_text() == TITLE_WITH_SCRIPT
    assert not any("pwned" in d for d in dialogs)

    # Lift a suspension (the page asks first).
    page.click("nav >> text=Suspensions")
    page.wait_for_url(f"{base_url}/explorer/suspensions")
    page.click(f"tr[data-sku='{SUSPENDED_SKU}'] button.lift")
    page.wait_for_url(f"**/explorer/suspensions?lifted={SUSPENDED_SKU}")
    assert dialogs == [f"Serve {SUSPENDED_SKU} again to every agent?"]
    assert "No SKU is suspended." in page.content()
    assert not redis_client.hexists(SUSPENDED, SUSPENDED_SKU)

    # Log out: the explorer asks for the key again.
    page.click("text=Log out")
    page.wait_for_url(f"{base_url}/explorer/login")
    page.goto(f"{base_url}/explorer/suspensions")
    assert page.url.startswith(f"{base_url}/explorer/login")


def test_a_missing_chromium_fails_with_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y chromium"):
        require_chromium(tmp_path / "chromium")
