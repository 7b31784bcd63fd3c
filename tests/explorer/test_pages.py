"""Explorer pages through the real app, Redis and published world: what they show and guard."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

import pytest

from recsys.cache.keys import SUSPENDED, CacheKeys
from recsys.quality.store import LIFTS
from serving.auth import add_key, revoke_key
from serving.explorer.reader import profile_location
from serving.explorer.sessions import SESSION_COOKIE, SESSION_PREFIX
from serving.explorer.views import Badge, return_badge
from tests.explorer.conftest import cards, form_token, login
from tests.explorer.world import EXPERIMENT, TITLE_WITH_SCRIPT, Published, published_list
from tests.serving.conftest import make_settings, serve
from tests.serving.world import publish as publish_serving_world


# ---- login and sessions -------------------------------------------------------------------------
def test_pages_send_a_visitor_without_a_session_to_the_login(app_client: Any) -> None:
    response = app_client.get("/explorer/agents/a00?k=5", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/explorer/login?next=%2Fexplorer%2Fagents%2Fa00%3Fk%3D5"
    lift = app_client.post("/explorer/suspensions/s03/lift", follow_redirects=False)
    assert lift.status_code == 303 and lift.headers["location"].startswith("/explorer/login")


def test_login_refuses_wrong_and_non_admin_keys(app_client: Any, world: Published) -> None:
    wrong = login(app_client, "rk_not-a-key")
    assert wrong.status_code == 401 and "That is not a valid API key." in wrong.text
    platform = login(app_client, world.platform_key)
    assert platform.status_code == 403
    assert "(scopes [&#39;platform&#39;]) may not use the picks explorer" in platform.text
    assert SESSION_COOKIE not in app_client.cookies


def test_login_cookie_is_httponly_strict_and_holds_no_key(
    app_client: Any, world: Published, redis_client: Any
) -> None:
    response = login(app_client, world.admin_key, "/explorer/agents/a00")
    assert response.status_code == 303
    assert response.headers["location"] == "/explorer/agents/a00"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/explorer" in cookie
    sid = app_client.cookies[SESSION_COOKIE]
    assert world.admin_key not in " ".join(response.headers.get_list("set-cookie"))
    # Redis keeps the session under the hash of its id, and never the key itself.
    stored = redis_client.get(SESSION_PREFIX + hashlib.sha256(sid.encode()).hexdigest())
    assert stored is not None and world.admin_key.encode() not in stored
    assert not list(redis_client.scan_iter(match=f"*{sid}*"))
    assert (
        0 < redis_client.ttl(SESSION_PREFIX + hashlib.sha256(sid.encode()).hexdigest()) <= 8 * 3600
    )


def test_login_needs_the_forms_own_token(app_client: Any, world: Published) -> None:
    app_client.get("/explorer/login")
    forged = app_client.post(
        "/explorer/login",
        data={"api_key": world.admin_key, "token": "guessed"},
        follow_redirects=False,
    )
    assert forged.status_code == 400 and "The login form expired" in forged.text
    accented = app_client.post(
        "/explorer/login",
        data={"api_key": world.admin_key, "token": "jeton-forgé", "next": "/explorer/reports"},
        follow_redirects=False,
    )
    assert accented.status_code == 400  # any text is compared, none gets in
    assert 'name="next" value="/explorer/reports"' in accented.text  # kept for the retry
    assert SESSION_COOKIE not in app_client.cookies


@pytest.mark.parametrize(
    ("next_url", "lands"),
    [
        ("/explorer/suspensions", "/explorer/suspensions"),
        ("https://evil.example/", "/explorer/"),
        ("//evil.example/explorer/", "/explorer/"),
        ("/explorer//evil.example", "/explorer/"),
        ("/v1/admin/suspensions", "/explorer/"),
    ],
)
def test_login_only_goes_on_inside_the_explorer(
    app_client: Any, world: Published, next_url: str, lands: str
) -> None:
    assert login(app_client, world.admin_key, next_url).headers["location"] == lands


def test_logout_ends_the_session_in_redis(admin: Any, redis_client: Any) -> None:
    sid = admin.cookies[SESSION_COOKIE]
    page = admin.get("/explorer/")
    no_token = admin.post("/explorer/logout", data={"csrf": ""}, follow_redirects=False)
    assert no_token.status_code == 403
    out = admin.post(
        "/explorer/logout", data={"csrf": form_token(page.text)}, follow_redirects=False
    )
    assert out.status_code == 303 and out.headers["location"] == "/explorer/login"
    assert not list(redis_client.scan_iter(match=f"{SESSION_PREFIX}*"))
    admin.cookies.set(SESSION_COOKIE, sid, path="/explorer")  # replaying the old cookie
    assert admin.get("/explorer/", follow_redirects=False).status_code == 303


def test_a_revoked_key_ends_its_sessions(admin: Any, world: Published, redis_client: Any) -> None:
    assert admin.get("/explorer/", follow_redirects=False).status_code == 200
    assert revoke_key(redis_client, world.admin_key) == 1
    assert admin.get("/explorer/", follow_redirects=False).status_code == 303


# ---- pages -------------------------------------------------------------------------------------
def test_overview_shows_the_live_meta_with_its_mlflow_run(admin: Any, world: Published) -> None:
    response = admin.get("/explorer/")
    html = response.text
    assert response.status_code == 200
    assert "default-src 'self'; script-src 'self'" in response.headers["content-security-policy"]
    live = html[html.index('id="snapshot-agent"') : html.index('id="snapshot-customer"')]
    assert f"<code>{world.current}</code>" in live
    assert '<strong class="model-version">3</strong>' in live
    assert 'href="http://mlflow.test:5000/#/runs/0123456789abcdef"' in live
    assert re.search(r'class="published-at">\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00<', live)
    assert '<th scope="row">users</th><td>24</td>' in live
    assert '<th scope="row">profiles</th><td>24</td>' in live
    assert f"<code>{world.challenger}</code></td><td>challenger</td>" in live
    assert "control (current, 1.0); treatment (challenger, 1.0)" in html
    assert "No customer snapshot is live" in html
    assert "1 suspended SKU<" in html


def test_agent_page_shows_her_profile_and_k_cards_as_served(
    admin: Any, world: Published, redis_client: Any, settings: Any
) -> None:
    html = admin.get("/explorer/agents/a00", params={"k": 6}).text
    assert '<dd class="region">north</dd>' in html and '<dd class="tier">1</dd>' in html
    assert '<dd class="audience">2 customers</dd>' in html
    assert "10.00 – 11.00\n        (median 10.00)" in html
    assert '<span class="name">snacks</span> <span class="share">100%</span>' in html
    variant = EXPERIMENT.assign("a00")
    assert f"Variant <strong>{variant.name}</strong> of experiment ranker" in html
    shown = cards(html)
    assert len(shown) == 6
    # The same answer the picks route gives with her region and tier as hints.
    api = admin.get(
        "/v1/agents/a00/picks",
        params={"k": 6, "region": "north", "tier": 1},
        headers={"X-API-Key": world.platform_key},
    ).json()
    assert [s for s, _, _ in shown] == [p["sku_id"] for p in api["picks"]]
    shift = 5 if variant.channel == "challenger" else 0
    assert [s for s, _, _ in shown] == published_list(0, shift)[:6]
    for (_, _, inner), pick in zip(shown, api["picks"], strict=True):
        reasons = re.findall(r"<li>([^<]+)</li>", inner)
        assert reasons == [r["text"] for r in pick["reasons"]] and reasons
        assert f'<span class="rank">#{pick["rank"]}</span>' in inner


def test_viewing_an_agent_logs_no_exposure(
    admin: Any, world: Published, redis_client: Any, settings: Any
) -> None:
    admin.get("/explorer/agents/a00", params={"k": 5})
    admin.get("/explorer/agents/a00/compare", params={"k": 5})
    time.sleep(0.3)  # several exposure flush intervals
    assert redis_client.xlen(settings.exposure_stream) == 0
    admin.get("/v1/agents/a00/picks", headers={"X-API-Key": world.platform_key})
    deadline = time.monotonic() + 3
    while redis_client.xlen(settings.exposure_stream) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert redis_client.xlen(settings.exposure_stream) == 1


def test_cards_carry_the_sku_facts_and_a_return_rate_badge(admin: Any) -> None:
    # On the current snapshot s01 is the first pick of a08 (north, where s01 is sold).
    html = admin.get("/explorer/agents/a08/compare", params={"left": "channel:current"}).text
    sku, _, s01 = cards(html[: html.index('aria-label="Right"')])[0]
    assert sku == "s01"
    assert '<span class="category">snacks</span>' in s01
    assert '<span class="price">11.00</span>' in s01
    assert '<span class="badge mid" title="share of units sold that came back">' in s01
    assert ">12.5% returned (of 8 sold)</span>" in s01
    assert return_badge({"units": 20, "returned": 4, "return_rate": 0.2}) == Badge(
        "20.0% returned (of 20 sold)", "high"
    )
    assert return_badge({"units": 0}) == Badge("no sales yet", "none")


def test_a_title_with_markup_is_shown_as_text(admin: Any) -> None:
    html = admin.get("/explorer/agents/a00/compare", params={"left": "channel:current"}).text
    s05 = next(inner for sku, _, inner in cards(html) if sku == "s05")
    assert (
        '<h3 class="title">&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; Chili crisps</h3>'
        in s05
    )
    assert TITLE_WITH_SCRIPT not in html and "<script>alert" not in html


def test_compare_puts_two_variants_side_by_side_with_the_overlap(admin: Any) -> None:
    response = admin.get(
        "/explorer/agents/a00/compare",
        params={"left": "channel:current", "right": "channel:challenger", "k": 7},
    )
    html = response.text
    split = html.index('aria-label="Right"')
    left, right = cards(html[:split]), cards(html[split:])
    # after the blocked SKUs: current has 8 left of her 10, challenger 7: no refill at k = 7
    assert [s for s, _, _ in left] == published_list(0, 0)[:7]
    assert [s for s, _, _ in right] == published_list(0, 5)[:7]
    both = {s for s, _, _ in left} & {s for s, _, _ in right}
    assert both == {"s11", "s04"}
    assert {s for s, hit, _ in left + right if hit} == both
    s11 = next(inner for sku, _, inner in left if sku == "s11")
    assert "also #1 on the other side" in s11
    assert "<strong>2</strong> SKUs in both lists" in html
    assert "channel current (variant control)" in html and "Both sides read" not in html
    assert "channel challenger (variant treatment)" in html


def test_compare_by_snapshot_id_and_bad_sources(admin: Any, world: Published) -> None:
    html = admin.get(
        "/explorer/agents/a00/compare",
        params={"left": f"snapshot:{world.current}", "right": "channel:current", "k": 5},
    ).text
    split = html.index('aria-label="Right"')
    assert [s for s, _, _ in cards(html[:split])] == [s for s, _, _ in cards(html[split:])]
    assert "<strong>5</strong> SKUs in both lists" in html
    assert f"Both sides read snapshot <code>{world.current}</code>" in html
    bad = admin.get("/explorer/agents/a00/compare", params={"left": "channel:no such"})
    assert bad.status_code == 422 and "channel must match" in bad.text
    gone = admin.get(
        "/explorer/agents/a00/compare", params={"left": "snapshot:20200101T000000Z-v1-abcd"}
    )
    assert gone.status_code == 404 and "is not in Redis" in gone.text
    nothing = admin.get("/explorer/agents/a00/compare", params={"right": "channel:other"})
    assert (
        nothing.status_code == 404 and "nothing is live on channel &#39;other&#39;" in nothing.text
    )


def test_unknown_agents_and_bad_inputs(admin: Any) -> None:
    newbie = admin.get("/explorer/agents/newbie", params={"k": 3}).text
    assert "No profile is published for newbie" in newbie
    assert '<dd class="source">fallback:global</dd>' in newbie and len(cards(newbie)) == 3
    bad_id = admin.get("/explorer/agents/a%20b")
    assert bad_id.status_code == 422 and "agent_id: String should match pattern" in bad_id.text
    bad_k = admin.get("/explorer/agents/a00", params={"k": 0})
    assert (
        bad_k.status_code == 422 and "k: Input should be greater than or equal to 1" in bad_k.text
    )
    search = admin.get("/explorer/agents", params={"agent_id": " a07 "}, follow_redirects=False)
    assert search.headers["location"] == "/explorer/agents/a07"


def test_suspensions_list_numbers_and_lift_needs_csrf(
    admin: Any, redis_client: Any, settings: Any
) -> None:
    page = admin.get("/explorer/suspensions").text
    assert '<tr data-sku="s03">' in page and '<span class="title">product 3</span>' in page
    assert "<dt>fault returns</dt><dd>5</dd>" in page and "<dt>rate</dt><dd>0.5556</dd>" in page
    assert "2026-09-21 14:13 UTC<br>by quality-check" in page
    for token in ("", "wrong", "façade"):
        refused = admin.post(
            "/explorer/suspensions/s03/lift", data={"csrf": token}, follow_redirects=False
        )
        assert refused.status_code == 403 and "CSRF token missing or wrong" in refused.text
    assert redis_client.hexists(SUSPENDED, "s03")
    # a10's current list starts with s03: it comes back once the suspension is lifted
    before = admin.get("/explorer/agents/a10/compare", params={"left": "channel:current", "k": 1})
    assert [s for s, _, _ in cards(before.text)][0] != "s03"
    lifted = admin.post(
        "/explorer/suspensions/s03/lift", data={"csrf": form_token(page)}, follow_redirects=False
    )
    assert lifted.status_code == 303
    assert lifted.headers["location"] == "/explorer/suspensions?lifted=s03"
    assert not redis_client.hexists(SUSPENDED, "s03")
    assert b'"by":"explorer:' in redis_client.hget(LIFTS, "s03")
    after = admin.get("/explorer/agents/a10/compare", params={"left": "channel:current", "k": 1})
    assert [s for s, _, _ in cards(after.text)][0] == "s03"
    shown = admin.get(lifted.headers["location"]).text
    assert "Lifted the suspension of s03" in shown and "No SKU is suspended." in shown
    again = admin.post(
        "/explorer/suspensions/s03/lift", data={"csrf": form_token(page)}, follow_redirects=False
    )
    assert again.status_code == 404 and "SKU s03 is not suspended" in again.text


def test_reports_are_listed_newest_first_and_served_sandboxed(
    admin: Any, reports_dir: tuple[Path, list[str]]
) -> None:
    _, paths = reports_dir
    html = admin.get("/explorer/reports").text
    assert re.findall(r'href="/explorer/reports/([^"]+)"', html) == paths
    report = admin.get(f"/explorer/reports/{paths[0]}")
    assert report.status_code == 200 and "<h1>A/B report 2026-11-01-ranker</h1>" in report.text
    assert report.headers["content-security-policy"].startswith("sandbox")
    plot = admin.get(f"/explorer/reports/{paths[0].rsplit('/', 1)[0]}/lift.png")
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    for bad in ("notes.txt", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "missing.html"):
        response = admin.get(f"/explorer/reports/{bad}")
        assert response.status_code == 404, bad
    assert admin.get("/explorer/").text.count('href="/explorer/reports/2026-') == 2


def test_without_a_reports_dir_the_page_says_how_to_set_it(
    redis_url: str, world: Published
) -> None:
    with serve(make_settings(redis_url)) as client:
        login(client, world.admin_key)
        html = client.get("/explorer/reports").text
    assert "RECSYS_REPORTS_DIR=/path/to/reports" in html


def test_with_no_snapshot_the_agent_page_says_what_to_do(
    redis_url: str, redis_client: Any, world: Published
) -> None:
    keys = CacheKeys("agent")
    redis_client.delete(keys.current, keys.pointer("challenger"))
    with serve(make_settings(redis_url)) as client:
        login(client, world.admin_key)
        response = client.get("/explorer/agents/a00")
    assert response.status_code == 503
    assert "no agent snapshot is live yet: publish one" in response.text


def test_a_snapshot_without_profiles_still_shows_its_picks(
    redis_url: str, redis_client: Any
) -> None:
    publish_serving_world(redis_client)  # no profiles, no SKU stats
    key = add_key(redis_client, ["admin"])[0]
    with serve(make_settings(redis_url)) as client:
        login(client, key)
        html = client.get("/explorer/agents/a03", params={"k": 4}).text
    assert "No profile is published for a03" in html
    assert [s for s, _, _ in cards(html)] == ["s03", "s04", "s05", "s06"]
    assert html.count("return rate not published") == 4


def test_with_auth_switched_off_any_key_opens_the_explorer(
    redis_url: str, world: Published
) -> None:
    with serve(make_settings(redis_url, auth_enabled=False)) as client:
        assert login(client, "anything").status_code == 303
        page = client.get("/explorer/agents/a00", params={"k": 2})
    assert page.status_code == 200 and len(cards(page.text)) == 2


def test_a_profile_missing_fields_still_renders(admin: Any, redis_client: Any) -> None:
    snapshot = admin.app.state.services.live.snapshot("agent").snapshot
    redis_client.hset(*profile_location(snapshot, "a02"), b'{"region": "north"}')
    html = admin.get("/explorer/agents/a02", params={"k": 2}).text
    assert '<dd class="region">north</dd>' in html and len(cards(html)) == 2
