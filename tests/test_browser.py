"""The sandbox page in real headless Chromium against the real service, FHIR server and database.

The page signs every call with WebCrypto (ES384) and the service verifies it with JWT checks ON,
so a pass means the browser's tokens, the hooks, the cards and the stored feedback all work.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from playwright.sync_api import Page, sync_playwright

from cds_service.settings import Settings
from cds_service.store import Database, FeedbackLog
from cds_service.store.report import recommendation_report
from cds_service.web.app import create_app
from sandbox import web
from sandbox.browser import launch
from sandbox.devkey import ensure_dev_key
from sandbox.load import load_patients
from sandbox.synthetic import sandbox_patients
from tests.conftest import TODAY, _free_port

ISSUER = "http://127.0.0.1/sandbox-under-test"
PATIENTS = {patient.id: patient for patient in sandbox_patients(TODAY)}


class ServerThread:
    """An ASGI app on a free loopback port, served by uvicorn in a thread."""

    def __init__(self, app, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            # log_config=None: uvicorn's default config would stop its loggers propagating for
            # the rest of the session, hiding them from tests that read the root logger.
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                           log_level="warning", access_log=False)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def stack(fhir_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """FHIR server with the sandbox patients, the service (JWT on) and the page server."""
    home = tmp_path_factory.mktemp("sandbox")
    with httpx.Client(timeout=30) as client:
        load_patients(fhir_server, list(PATIENTS.values()), client)
    key = ensure_dev_key(home / "key", ISSUER)
    database_url = f"sqlite:///{home}/aimss.db"
    port = _free_port()
    settings = Settings(
        trusted_issuers_file=key.issuers_file, allow_open_fhir=True, database_url=database_url,
        listen_url=f"http://127.0.0.1:{port}",
    )
    service = ServerThread(create_app(settings, clock=lambda: TODAY), port)
    with service:
        page_app = web.create_app(service.url, fhir_server, home / "key", ISSUER, today=lambda: TODAY)
        with ServerThread(page_app) as page_server:
            yield {"page_url": page_server.url + "/", "database_url": database_url, "home": home}


@pytest.fixture(scope="module")
def page(stack: dict) -> Iterator[Page]:
    with sync_playwright() as playwright:
        context = launch(playwright, stack["home"] / "chromium-profile")
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(stack["page_url"])
        page.wait_for_selector('#services[data-state="ready"]', timeout=15_000)
        yield page
        context.close()
        assert errors == [], "the page logged errors"


def open_patient(page: Page, patient_id: str) -> dict[str, str]:
    """Click the patient, wait for patient-view, and return the cards' topics and indicators."""
    page.click(f'.patient[data-patient-id="{patient_id}"]')
    page.wait_for_selector(f'#pv-cards[data-state="done"][data-patient="{patient_id}"]', timeout=15_000)
    return cards_in(page, "#pv-cards")


def cards_in(page: Page, container: str) -> dict[str, str]:
    return dict(page.eval_on_selector_all(
        f"{container} .card", "cards => cards.map(c => [c.dataset.topic, c.className])"
    ))


def recommendations_in(page: Page, container: str) -> set[str]:
    """What the shown cards hold: a grouped card's recommendations, else the card's topic."""
    held = page.eval_on_selector_all(
        f"{container} .card:not([hidden])",
        "cards => cards.map(c => c.dataset.recommendations || c.dataset.topic)",
    )
    return {topic for entry in held for topic in entry.split()}


def card(page: Page, container: str, topic: str):
    return page.locator(f'{container} .card[data-topic="{topic}"]')


def test_discovery_is_signed_and_accepted(page: Page) -> None:
    assert "aimss-patient-view" in page.text_content("#services")


@pytest.mark.parametrize(
    "patient_id", ["aimss-no-dxa", "aimss-severe-bpi", "aimss-hand", "aimss-on-hold", "aimss-no-ai"]
)
def test_each_patient_shows_the_expected_cards(page: Page, patient_id: str) -> None:
    shown = open_patient(page, patient_id)
    assert len(shown) <= 3
    assert recommendations_in(page, "#pv-cards") == PATIENTS[patient_id].expected
    if not PATIENTS[patient_id].expected:
        assert "No cards" in page.text_content("#pv-cards")


def test_card_detail_is_rendered_markdown_without_raw_markup(page: Page) -> None:
    open_patient(page, "aimss-severe-bpi")
    detail = card(page, "#pv-cards", "aimss-plan").locator(".detail")
    assert detail.locator("strong").count() >= 1
    assert detail.locator("li").count() >= 1
    assert "**" not in detail.text_content()
    assert detail.locator("a").first.get_attribute("href").startswith("https://")


def test_a_drafted_order_gets_its_order_select_card(page: Page) -> None:
    open_patient(page, "aimss-no-dxa")
    page.select_option("#draft-select", "draft-raloxifene")
    page.click("#draft-button")
    page.wait_for_selector('#os-cards[data-state="done"]', timeout=15_000)
    found = cards_in(page, "#os-cards")
    assert set(found) == {"serm-with-ai"}
    assert "card--critical" in found["serm-with-ai"]


def test_accept_and_dismiss_are_stored_as_feedback(page: Page, stack: dict) -> None:
    open_patient(page, "aimss-no-dxa")
    page.select_option("#draft-select", "draft-raloxifene")
    page.click("#draft-button")
    page.wait_for_selector('#os-cards[data-state="done"]', timeout=15_000)

    serm = card(page, "#os-cards", "serm-with-ai")
    suggestion = serm.locator(".suggestion").first
    suggestion_uuid = suggestion.get_attribute("data-suggestion-uuid")
    suggestion.click()
    page.wait_for_selector("#toast:has-text('Suggestion taken')", timeout=10_000)

    scan = card(page, "#pv-cards", "bone-health")
    scan_uuid = scan.get_attribute("data-card-uuid")
    scan.locator(".override-reason").select_option("not-now")
    scan.locator(".dismiss-button").click()
    page.wait_for_selector("#toast:has-text('Card dismissed')", timeout=10_000)
    assert scan.is_hidden()

    database = Database(stack["database_url"])
    try:
        rows = {row["outcome"]: row for row in FeedbackLog(database).rows()}
    finally:
        database.close()
    accepted, overridden = rows["accepted"], rows["overridden"]
    assert accepted["service_id"] == "aimss-order-select"
    assert accepted["card_uuid"] == serm.get_attribute("data-card-uuid")
    assert json.loads(accepted["accepted_suggestions"]) == [suggestion_uuid]
    assert overridden["service_id"] == "aimss-patient-view"
    assert (overridden["card_uuid"], overridden["override_code"]) == (scan_uuid, "not-now")
    assert overridden["override_system"].endswith("/CodeSystem/aimss-override-reasons")

    # "Not now" quiets that card for this patient only (DESIGN §4, §5); the others still show.
    assert set(open_patient(page, "aimss-no-dxa")) == {"aimss-plan"}
    assert "bone-health" in open_patient(page, "aimss-old-dxa")


def test_a_plan_card_suggestion_taken_then_not_now_quiets_that_card_for_that_patient_only(
    page: Page, stack: dict
) -> None:
    open_patient(page, "aimss-severe-bpi")
    plan = card(page, "#pv-cards", "aimss-plan")
    assert plan.get_attribute("data-recommendations") == "exercise multimodal-management duloxetine"
    take = plan.locator('.suggestion[data-recommendation="duloxetine"]')
    assert take.count() == 1
    take.click()
    page.wait_for_selector("#toast:has-text('Suggestion taken')", timeout=10_000)
    plan.locator(".override-reason").select_option("not-now")
    plan.locator(".dismiss-button").click()
    page.wait_for_selector("#toast:has-text('Card dismissed')", timeout=10_000)
    assert plan.is_hidden()

    assert open_patient(page, "aimss-severe-bpi") == {}, "the plan card is gone for this patient"
    assert "No cards" in page.text_content("#pv-cards")
    assert "aimss-plan" in open_patient(page, "aimss-depression"), "and only for this patient"

    database = Database(stack["database_url"])
    try:
        (rows,) = recommendation_report(database).values()  # the page's one EHR: one tenant
        by_recommendation = {row.topic: row for row in rows}
    finally:
        database.close()
    duloxetine = by_recommendation["duloxetine"]
    assert duloxetine.accepted == 1, "the accepted suggestion is recorded against its recommendation"
    assert by_recommendation["exercise"].accepted == 0
    assert by_recommendation["multimodal-management"].overridden >= 1


def test_markdown_renderer_escapes_html_and_links_only_http(page: Page) -> None:
    html = page.evaluate(
        """() => renderMarkdown('**Why** <img src=x onerror=alert(1)>\\n- [bad](javascript:alert(1))'
                               + '\\n- [good](https://example.org/a?b=1&c=2) _note_')"""
    )
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="javascript' not in html
    assert '<a href="https://example.org/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">good</a>' in html
    assert "<em>note</em>" in html and "<strong>Why</strong>" in html
