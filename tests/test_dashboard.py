"""The demo dashboard in a real browser (headless Chromium): what a new user sees."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
import shutil
import threading

from playwright.sync_api import Page, expect, sync_playwright
import pytest

from rig.paths import ROOT
from rig.rig import Rig, ha_version

pytestmark = pytest.mark.usefixtures("socket_enabled")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
BRAND = ROOT / "custom_components" / "octoplugout" / "brand"
# The first Home Assistant that serves a custom integration's brand folder.
BRAND_IMAGES_SHOWN = (2026, 3)


@pytest.fixture
def screenshots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where the screenshots go: a temporary folder, or the README's with --screenshots."""
    folder: str | None = request.config.getoption("screenshots")
    return Path(folder) if folder else tmp_path


@pytest.fixture
def page(rig: Rig) -> Generator[Page]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is missing: run scripts/setup"
    threads_before = set(threading.enumerate())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            browser.close()
    # Playwright's own event loop is closed; its executor's workers end a moment later. Home
    # Assistant's test plugin fails a test that leaves a thread, so they are waited for.
    for thread in set(threading.enumerate()) - threads_before:
        if thread.name.startswith("asyncio_"):
            thread.join(timeout=10)


def shown(page: Page, text: str) -> None:
    """Wait until the dashboard shows a text, as long as a loaded machine needs for it.

    Playwright's own 5 s is too short for Home Assistant's frontend loading on a busy machine.
    """
    expect(page.get_by_text(text).first).to_be_visible(timeout=120_000)


def test_dashboard_shows_the_plug_and_power_off_now_works(
    rig: Rig, page: Page, screenshots: Path
) -> None:
    state = rig.entity("sensor", "state")
    rig.ha.wait_for_state(state, "idle", seconds=120)
    # Trusted local network: no login prompt.
    page.goto(f"{rig.ha.url}/lovelace/printer")
    shown(page, "Start demo print")
    shown(page, "Idle")
    page.screenshot(path=screenshots / "dashboard-idle.png")

    page.get_by_text("Start demo print").click()
    shown(page, "Print started")
    page.get_by_text("Power off now").click()
    shown(page, "Armed: off after the job")
    assert rig.ha.state_of(state) == "armed"
    assert rig.ha.state_of(rig.entity("select", "mode")) == "off"
    page.screenshot(path=screenshots / "dashboard-armed.png")

    page.get_by_text("Cancel power-off").click()
    shown(page, "Print started")
    assert rig.ha.state_of(rig.entity("switch", "power")) == "on"
    for name in ("dashboard-idle.png", "dashboard-armed.png"):
        assert (screenshots / name).stat().st_size > 0


def test_the_integration_card_shows_octoplugouts_own_icon(
    rig: Rig, page: Page, screenshots: Path
) -> None:
    if ha_version() < BRAND_IMAGES_SHOWN:
        pytest.skip("Home Assistant shows a custom integration's own brand images from 2026.3 on")
    page.goto(f"{rig.ha.url}/config/integrations/dashboard")
    shown(page, "OctoPlugout")
    icon = page.locator("img[src*='/brands/integration/octoplugout/']").first
    expect(icon).to_be_visible(timeout=120_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=icon.element_handle())
    source = str(icon.get_attribute("src"))
    # The image Home Assistant serves is the one in the integration's brand folder, not its
    # placeholder for an integration without one.
    name = source.split("/brands/integration/octoplugout/")[1].split("?")[0]
    served = page.request.get(f"{rig.ha.url}{source}" if source.startswith("/") else source)
    assert served.ok
    assert served.body() == (BRAND / name).read_bytes()
    card = page.locator("ha-integration-card").filter(has_text="OctoPlugout").first
    card.screenshot(path=screenshots / "integration-card.png")
    assert (screenshots / "integration-card.png").stat().st_size > 0


def test_the_automation_editor_offers_the_power_off_step_as_a_trigger(
    rig: Rig, page: Page, screenshots: Path
) -> None:
    step = rig.entity("event", "power_off_step")
    page.goto(f"{rig.ha.url}/config/automation/edit/new")
    page.get_by_role("button", name="Add trigger").first.click()
    by_target = page.get_by_text("By target", exact=True)
    expect(by_target.or_(page.get_by_text("Other triggers", exact=True)).first).to_be_visible()
    if by_target.count():
        # Home Assistant 2026 starts from what the trigger is about: the entity is found by name.
        page.get_by_placeholder("Search").first.fill("Power-off step")
        offered = page.get_by_text("Power-off step").first
    else:
        page.get_by_text("Entity", exact=True).first.click()
        page.get_by_text("State", exact=True).first.click()
        page.locator("ha-entity-picker").first.click()
        page.keyboard.type("Power-off step")
        # The picker lists the entity by its id under its name.
        offered = page.get_by_text(step, exact=True).first
    expect(offered).to_be_visible(timeout=60_000)
    page.screenshot(path=screenshots / "automation-trigger.png")
    assert (screenshots / "automation-trigger.png").stat().st_size > 0
