"""Memory, resources and tools & jobs in a real browser, against the real server.

- a document uploaded through the page's progress bar is found by the search form (htmx);
- a memory value is edited (a bad value first: the error is shown and nothing changes);
- a large upload's embedding job changes status on the page as a real Celery worker runs it: the
  job waits queued (no worker yet), then succeeds once one starts, with no reload. That needs a
  broker, so it runs on the Redis-backed server and workers of tests/e2e/test_tool_jobs.py (the
  default test server has no Redis and runs jobs in-process, inside the upload's request).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from apps.core.ids import new_id
from apps.memory.services import memory_item_store
from apps.tools.models import ToolJob
from tests.dashboard.browser import browser_test, screenshot, sign_in
from tests.dashboard.conftest import PASSWORD
from tests.e2e.conftest import LiveServer
from tests.e2e.test_tool_jobs import jobs_server, workers  # noqa: F401  (fixtures)

pytestmark = browser_test
# The server loads the embedding model when it first embeds (SLOP_EMBEDDINGS_PRELOAD is off in
# tests): what waits on the first embedding may wait that long on a busy machine.
MODEL_LOAD = 180_000

RECORD_PROGRESS = """() => {
  window.__progress = [];
  const percent = document.querySelector('.upload-percent');
  new MutationObserver(() => window.__progress.push(percent.textContent))
    .observe(percent, {childList: true, characterData: true, subtree: true});
}"""


def note(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_upload_a_document_then_find_it_by_search(
    page: Page, make_member: Callable[..., Any], make_tenant: Any, tmp_path: Path
) -> None:
    team = make_tenant("Tide Tables")
    make_member(team, "owner", username="marina")
    sign_in(page, "marina", PASSWORD)
    page.goto(f"/console/t/{team.slug}/resources/")
    expect(page.get_by_role("heading", name="Resources", exact=True)).to_be_visible()

    body = "# Ferry timetable\n\n" + "The ferry to Belle-Ile leaves the harbour at noon on weekdays. " * 60
    page.get_by_label("File", exact=True).set_input_files(str(note(tmp_path, "ferry.md", body)))
    page.get_by_label("Id", exact=True).fill("harbour/ferry")
    page.evaluate(RECORD_PROGRESS)
    page.get_by_role("button", name="Upload").click()

    result = page.locator("#upload-result")
    expect(result).to_contain_text("Uploaded harbour/ferry", timeout=MODEL_LOAD)
    expect(page.locator("#resource-list")).to_contain_text("harbour/ferry")  # the list fetched itself again
    expect(page.locator(".upload-progress")).to_be_visible()
    expect(page.locator("#upload-progress-bar")).to_have_attribute("value", "100")
    assert "100%" in page.evaluate("window.__progress")
    screenshot(page, "resources-uploaded")

    search = page.get_by_role("search")
    search.get_by_label("Search words and meaning").fill("when does the boat to Belle-Ile leave")
    search.get_by_role("button", name="Search").click()
    hit = page.locator("#resource-results .hits li").first
    expect(hit).to_contain_text("harbour/ferry", timeout=MODEL_LOAD)
    expect(hit.locator(".snippet")).to_contain_text("Belle-Ile")
    assert page.url.endswith("/resources/")  # swapped in by htmx, not a new page
    screenshot(page, "resources-search")

    hit.get_by_role("link").click()
    expect(page.locator("#resource-content")).to_contain_text("leaves the harbour at noon")
    expect(page.locator("#indexing")).to_contain_text("By words and by meaning")
    screenshot(page, "resource")


def test_edit_a_memory_value(page: Page, make_member: Callable[..., Any], make_tenant: Any) -> None:
    team = make_tenant("Lighthouse Memory")
    make_member(team, "admin", username="keeper")
    memory_item_store(tenant=team, key="lamp/schedule", value={"on": "18:30", "off": "07:10"})
    memory_item_store(tenant=team, key="keeper/name", value="Ada, keeper of the lamp")
    sign_in(page, "keeper", PASSWORD)
    page.goto(f"/console/t/{team.slug}/memory/")

    search = page.get_by_role("search")
    search.get_by_label("Search by meaning").fill("when is the light switched on")
    search.get_by_role("button", name="Search").click()
    expect(page.locator("#memory-results tbody tr").first).to_contain_text(
        "lamp/schedule", timeout=MODEL_LOAD
    )
    screenshot(page, "memory")

    page.locator("#memory-keys").get_by_role("link", name="lamp/schedule").click()
    expect(page.locator("#memory-value")).to_contain_text('"on": "18:30"')
    value = page.get_by_label("Value (JSON)")
    value.fill('{"on": "19:00", "off": ')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Not valid JSON")
    expect(page.locator("#memory-value")).to_contain_text('"on": "18:30"')  # nothing stored

    value.fill(json.dumps({"on": "19:00", "off": "06:45", "note": "winter"}))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved lamp/schedule.", timeout=MODEL_LOAD)
    expect(page.locator("#memory-value")).to_contain_text('"on": "19:00"')
    screenshot(page, "memory-item")


def test_the_tools_page(page: Page, make_member: Callable[..., Any], make_tenant: Any) -> None:
    team = make_tenant("Weather Station")
    make_member(team, "admin", username="forecaster")
    for status in ("succeeded", "failed", "running"):
        ToolJob.objects.for_tenant(team).create(
            tenant=team, public_id=new_id("job"), tool_slug="calculator", status=status, timeout_seconds=30
        )
    sign_in(page, "forecaster", PASSWORD)
    page.goto(f"/console/t/{team.slug}/tools/")
    page.get_by_role("link", name="Register a webhook tool").click()
    page.get_by_label("Tool id").fill("forecast")
    page.get_by_label("Webhook URL").fill("ftp://weather.example.com/hook")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_contain_text("must start with http")
    page.get_by_label("Webhook URL").fill("https://weather.example.com/hook")
    page.get_by_label("Parameters schema (JSON)").fill(
        '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}'
    )
    page.get_by_label("Safe (members may run it)").check()
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#signing-secret")).to_contain_text("whsec_")
    page.get_by_role("link", name="Back to tools").click()
    row = page.locator('tr[data-tool="forecast"]')
    expect(row).to_contain_text("webhook")
    expect(row.locator(".tag.safe")).to_be_visible()
    row.get_by_text("Schema").click()
    expect(row.locator("pre")).to_contain_text('"city"')
    expect(page.locator("#jobs .job-status")).to_have_count(3)
    screenshot(page, "tools")


def test_a_jobs_status_changes_live(
    page: Page,
    make_member: Callable[..., Any],
    make_tenant: Any,
    jobs_server: LiveServer,  # noqa: F811
    workers: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    team = make_tenant("Pump House")
    make_member(team, "admin", username="engineer")
    context = page.context.browser.new_context(
        base_url=jobs_server.url, viewport={"width": 1280, "height": 860}
    )  # type: ignore[union-attr]
    context.set_default_timeout(20_000)
    console = context.new_page()
    sign_in(console, "engineer", PASSWORD)
    console.goto(f"/console/t/{team.slug}/resources/")

    steps = " ".join(f"Step {i}: check the valve of pump {i} and log the pressure." for i in range(200))
    console.get_by_label("File", exact=True).set_input_files(
        str(note(tmp_path, "pumps.txt", steps))
    )  # > 8,000 chars
    console.get_by_role("button", name="Upload").click()
    result = console.locator("#upload-result")
    expect(result).to_contain_text(
        "searchable by words now, by meaning when the job ends", timeout=MODEL_LOAD
    )
    status = result.locator(".job-status")
    expect(status).to_have_attribute("data-status", "queued")  # no worker runs yet
    console.wait_for_timeout(2_500)  # polled a few times meanwhile: still queued
    expect(status).to_have_attribute("data-status", "queued")
    screenshot(console, "resource-job-queued")

    workers("console-indexer")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=240_000)
    expect(status).to_contain_text("searchable by meaning now")
    screenshot(console, "resource-job-succeeded")
    expect(console.locator("#resource-list")).to_contain_text("pumps.txt")  # the list fetched itself again
    result.get_by_role("link", name="pumps.txt").click()
    expect(console.locator("#indexing")).to_contain_text("By words and by meaning")
    context.close()
