"""The city office dashboard in a real browser (Playwright driving Debian's Chromium) against
a real gateway and a real school node: log in, create an enrolment token in the UI and
enrol the node with it (``parta node enrol``), see the school appear, revoke it through the
confirmation page, search the directory, log out.  Screenshots go to ``artifacts/``
(``artifacts/dashboard.png`` is the schools page with the enrolled school)."""

from __future__ import annotations

import os
import re

import pytest

from gateway_e2e_support import OFFICE_PASSWORD, init_gateway, init_school

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def browser():
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package is not installed"
    if missing is None and not os.path.exists(CHROMIUM):
        missing = f"{CHROMIUM} not found (apt-get install chromium)"
    if missing:
        if IN_CI:
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard")
    gateway = init_gateway(str(root / "gateway"))
    school = init_school(str(root / "school42"), "lyceum42.e2e.test")
    started = []
    try:
        started.append(gateway.start())
        started.append(school.start())
        yield gateway, school
    finally:
        codes = {p.kind: p.stop() for p in started}
    assert codes == {p.kind: 0 for p in started}, [p.log_tail() for p in started]


@pytest.fixture(scope="module")
def artifacts(pytestconfig):
    path = os.path.join(str(pytestconfig.rootpath), "artifacts")
    os.makedirs(path, exist_ok=True)
    return path


def row_of(page, text):
    return page.locator("tr", has_text=text)


def test_dashboard_enrol_see_revoke_search(browser, city, artifacts):
    gateway, school = city
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    base = gateway.base_url

    # --- log in ---------------------------------------------------------------------------
    page.goto(base + "/dashboard/")
    assert page.url == base + "/dashboard/login"
    page.screenshot(path=os.path.join(artifacts, "dashboard-login.png"))
    page.fill("#username", "office")
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    assert page.locator(".flash-error").inner_text() == "Invalid username or password."
    page.fill("#username", "office")
    page.fill("#password", OFFICE_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/dashboard/")
    assert page.locator("h1").inner_text() == "Schools"
    cookie = next(c for c in page.context.cookies() if c["name"] == "parta_dash")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    # --- create a token in the UI and enrol a real node with it ----------------------------
    page.click("nav >> text=Enrolment")
    page.fill("#school_id", "42")
    page.fill("#name", "Lyceum No. 42")
    page.fill("#district", "North")
    page.select_option("#ttl_days", "1")
    page.click("text=Create token")
    token = page.locator("#token").inner_text().strip()
    assert re.fullmatch(r"parta-enrol:v1:[A-Za-z0-9_-]+", token)
    page.screenshot(path=os.path.join(artifacts, "dashboard-enrolment.png"), full_page=True)
    page.reload()
    assert page.locator("#token").count() == 0  # shown once

    # A second school stays pending (no node enrols with its token).
    page.fill("#school_id", "7")
    page.fill("#name", "Gymnasium No. 7")
    page.fill("#district", "South")
    page.click("text=Create token")
    assert page.locator("#token").count() == 1

    res = school.cli("enrol", base, "--token", token)
    assert "Enrolled lyceum42.e2e.test" in res.stdout

    # --- see it appear ----------------------------------------------------------------------
    page.click("nav >> text=Schools")
    row = row_of(page, "Lyceum No. 42")
    assert "lyceum42.e2e.test" in row.inner_text() and "enrolled" in row.inner_text()
    assert "pending" in row_of(page, "Gymnasium No. 7").inner_text()
    assert page.locator(".card .num").first.inner_text() == "1"  # schools enrolled
    page.screenshot(path=os.path.join(artifacts, "dashboard.png"), full_page=True)

    page.click("text=Lyceum No. 42")
    assert page.locator("h1").inner_text() == "Lyceum No. 42"
    assert "ed25519:" in page.locator("table.keys").inner_text()

    page.click("nav >> text=Roster")
    rows = page.locator("table.roster tbody tr")
    assert rows.count() == 2
    assert "verified" in rows.first.inner_text() and "chained" in rows.first.inner_text()
    page.screenshot(path=os.path.join(artifacts, "dashboard-roster.png"), full_page=True)

    # --- revoke (with confirmation) -------------------------------------------------------
    page.click("nav >> text=Schools")
    page.click("text=Lyceum No. 42")
    page.click("text=Revoke\u2026")
    assert "Revoke Lyceum No. 42" in page.locator("main").inner_text()
    page.click("text=Yes, revoke Lyceum No. 42")
    assert "roster version 3 published without it" in page.locator(".flash-ok").inner_text()
    status, doc = gateway.get("/_parta/v1/roster")
    assert doc["version"] == 3 and "lyceum42.e2e.test" not in doc["servers"]
    page.click("nav >> text=Schools")
    assert "revoked" in row_of(page, "Lyceum No. 42").inner_text()

    # --- directory search -----------------------------------------------------------------
    page.click("nav >> text=Directory")
    page.fill("input[name=q]", "south")
    page.click("form.search button")
    results = page.locator("table.directory tbody")
    assert "Gymnasium No. 7" in results.inner_text()
    assert "Lyceum" not in results.inner_text()
    page.fill("input[name=q]", "lyceum42")
    page.click("form.search button")
    assert "Lyceum No. 42" in results.inner_text() and "revoked" in results.inner_text()
    page.screenshot(path=os.path.join(artifacts, "dashboard-directory.png"), full_page=True)
    page.fill("input[name=q]", "no such school")
    page.click("form.search button")
    assert "No school matches" in results.inner_text()

    # --- log out ----------------------------------------------------------------------------
    page.click("text=Log out")
    page.wait_for_url(base + "/dashboard/login")
    page.goto(base + "/dashboard/")
    assert page.url == base + "/dashboard/login"
    page.close()
