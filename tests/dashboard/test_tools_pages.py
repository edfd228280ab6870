"""The Tools & jobs page: tools with their safe flag and schema, webhook tools registered, edited
and deleted by admins (the same validation and URL guard as PUT /tools), jobs and cancelling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client, override_settings

from apps.core.ids import new_id
from apps.tenants.models import Tenant
from apps.tools.models import Tool, ToolJob

pytestmark = pytest.mark.django_db
HOOK = "http://127.0.0.1:9/hook"  # private addresses are allowed in tests (SLOP_HTTP_ALLOW_PRIVATE)
SCHEMA = '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}'


def page(team: Tenant, name: str = "") -> str:
    return f"/console/t/{team.slug}/tools/{name}"


def webhook(team: Tenant, slug: str, **fields: Any) -> Tool:
    values = {"kind": "webhook", "webhook_url": HOOK, "description": f"The {slug} tool", **fields}
    return Tool.objects.for_tenant(team).create(
        tenant=team, slug=slug, signing_secret="whsec_0123456789abcdef", **values
    )


def job(team: Tenant, tool: str = "calculator", status: str = "running") -> ToolJob:
    return ToolJob.objects.for_tenant(team).create(
        tenant=team, public_id=new_id("job"), tool_slug=tool, status=status, timeout_seconds=30
    )


def tool_row(team: Tenant, slug: str) -> Tool | None:
    return Tool.objects.for_tenant(team).filter(slug=slug).first()


def form(**fields: Any) -> dict[str, Any]:
    return {"description": "Weather by city", "url": HOOK, "schema": SCHEMA, "enabled": "on", **fields}


def test_the_tools_are_listed_with_safe_flag_and_schema(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    webhook(
        alice, "weather", safe=True, schema={"type": "object", "properties": {"city": {"type": "string"}}}
    )
    body = console_for(alice, "member").get(page(alice)).content.decode()
    assert 'data-tool="calculator"' in body and 'data-tool="weather"' in body
    weather = body.split('data-tool="weather"')[1].split("</tr>")[0]
    assert "webhook" in weather and 'class="tag safe"' in weather and "&quot;city&quot;" in weather
    assert HOOK not in body  # the URL is for those who may change the tool
    assert "Register a webhook tool" not in body and "/weather/edit" not in body


def test_an_admin_registers_a_webhook_tool_and_sees_its_secret_once(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    admin = console_for(alice, "admin")
    assert "Register a webhook tool" in admin.get(page(alice)).content.decode()
    response = admin.post(page(alice, "new"), form(id="weather", safe="on"))
    assert response.status_code == 201
    row = tool_row(alice, "weather")
    assert row is not None and row.kind == "webhook" and row.safe and row.webhook_url == HOOK
    assert row.schema["required"] == ["city"]
    assert row.signing_secret in response.content.decode() and row.signing_secret.startswith("whsec_")
    assert row.signing_secret not in admin.get(page(alice)).content.decode()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": "jobs"}, "reserved"),
        ({"id": "bad id!"}, "a tool id is 1-64"),
        ({"id": "calculator"}, "built-in tool"),
        ({"id": "weather", "url": "ftp://example.com/hook"}, "must start with http"),
        ({"id": "weather", "url": "http://user:pw@example.com/hook"}, "Credentials in the URL"),
        ({"id": "weather", "schema": '{"type": "string"}'}, "object"),
        ({"id": "weather", "schema": "{nope"}, "Not valid JSON"),
        ({"id": "weather", "timeout_seconds": "100000"}, "Must be a number between"),
    ],
)
def test_bad_registrations_are_refused_and_store_nothing(
    console_for: Callable[..., Client], alice: Tenant, fields: dict[str, str], message: str
) -> None:
    response = console_for(alice, "owner").post(page(alice, "new"), form(**fields))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Tool.objects.for_tenant(alice).exists()


@override_settings(OUTBOUND_HTTP_ALLOW_PRIVATE=False)
def test_the_ssrf_guard_refuses_internal_addresses(console_for: Callable[..., Client], alice: Tenant) -> None:
    admin = console_for(alice, "admin")
    for url in ("http://127.0.0.1:8000/hook", "http://169.254.169.254/latest/meta-data", "http://10.0.0.5/x"):
        response = admin.post(page(alice, "new"), form(id="probe", url=url))
        assert response.status_code == 400 and "The URL points to" in response.content.decode(), url
    assert not Tool.objects.for_tenant(alice).exists()


def test_an_existing_tool_is_not_overwritten_by_registering(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    webhook(alice, "weather")
    response = console_for(alice, "admin").post(
        page(alice, "new"), form(id="weather", url="http://127.0.0.1:7/other")
    )
    assert response.status_code == 400 and "edit it instead" in response.content.decode()
    assert tool_row(alice, "weather").webhook_url == HOOK  # type: ignore[union-attr]


def test_an_admin_edits_a_webhook_tool_keeping_or_rotating_its_secret(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    webhook(alice, "weather")
    admin = console_for(alice, "admin")
    edit = admin.get(page(alice, "weather/edit"))
    assert edit.status_code == 200 and HOOK in edit.content.decode()
    saved = admin.post(page(alice, "weather/edit"), form(url="http://127.0.0.1:7/v2", long_running="on"))
    assert saved.status_code == 302
    row = tool_row(alice, "weather")
    assert row is not None and row.webhook_url == "http://127.0.0.1:7/v2" and row.long_running
    assert row.signing_secret == "whsec_0123456789abcdef" and not row.safe
    rotated = admin.post(page(alice, "weather/edit"), form(rotate_secret="on"))
    row = tool_row(alice, "weather")
    assert row is not None and row.signing_secret != "whsec_0123456789abcdef"
    assert rotated.status_code == 200 and row.signing_secret in rotated.content.decode()


def test_a_bad_edit_changes_nothing(console_for: Callable[..., Client], alice: Tenant) -> None:
    webhook(alice, "weather")
    response = console_for(alice, "admin").post(
        page(alice, "weather/edit"), form(url="gopher://x", safe="on")
    )
    assert response.status_code == 400 and "must start with http" in response.content.decode()
    row = tool_row(alice, "weather")
    assert row is not None and row.webhook_url == HOOK and not row.safe


def test_built_in_tools_are_not_edited_or_deleted_here(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    admin = console_for(alice, "admin")
    assert admin.get(page(alice, "calculator/edit")).status_code == 404
    assert admin.post(page(alice, "calculator/delete")).status_code == 404


def test_an_admin_deletes_a_webhook_tool_after_confirming(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    webhook(alice, "weather")
    admin = console_for(alice, "admin")
    assert "cannot be undone" in admin.get(page(alice, "weather/delete")).content.decode()
    assert tool_row(alice, "weather") is not None
    assert admin.post(page(alice, "weather/delete")).status_code == 302
    assert tool_row(alice, "weather") is None


def test_members_may_not_change_tools_or_cancel_jobs(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    webhook(alice, "weather")
    running = job(alice)
    member = console_for(alice, "member")
    for url in (page(alice, "new"), page(alice, "weather/edit"), page(alice, "weather/delete")):
        assert member.get(url).status_code == 403, url
    assert member.post(page(alice, "new"), form(id="other")).status_code == 403
    assert member.post(page(alice, "weather/edit"), form(url="http://127.0.0.1:7/x")).status_code == 403
    assert member.post(page(alice, "weather/delete")).status_code == 403
    assert member.post(page(alice, f"jobs/{running.public_id}/cancel")).status_code == 403
    assert ">Cancel</button>" not in member.get(page(alice)).content.decode()
    assert tool_row(alice, "other") is None and tool_row(alice, "weather").webhook_url == HOOK  # type: ignore[union-attr]
    running.refresh_from_db()
    assert running.status == "running"


def test_jobs_are_listed_with_a_live_status(console_for: Callable[..., Client], alice: Tenant) -> None:
    running, finished = job(alice, status="running"), job(alice, status="succeeded")
    console = console_for(alice, "member")
    body = console.get(page(alice)).content.decode()
    assert running.public_id in body and finished.public_id in body
    running_badge = body.split(f'data-job="{running.public_id}"')[1].split("</span>")[0]
    finished_badge = body.split(f'data-job="{finished.public_id}"')[1].split("</span>")[0]
    assert 'hx-trigger="every 1s"' in running_badge and "hx-trigger" not in finished_badge
    only_running = console.get(page(alice, "jobs") + "?status=running").content.decode()
    assert running.public_id in only_running and finished.public_id not in only_running
    ToolJob.objects.for_tenant(alice).filter(pk=running.pk).update(status="succeeded")
    fragment = console.get(page(alice, f"jobs/{running.public_id}")).content.decode()
    assert 'data-status="succeeded"' in fragment and "hx-trigger" not in fragment
    bad = console.get(page(alice, "jobs") + "?status=exploded")
    assert bad.status_code == 200 and 'class="errorlist"' in bad.content.decode()


def test_an_admin_cancels_a_running_job(console_for: Callable[..., Client], alice: Tenant) -> None:
    running = job(alice)
    admin = console_for(alice, "admin")
    assert ">Cancel</button>" in admin.get(page(alice)).content.decode()
    response = admin.post(page(alice, f"jobs/{running.public_id}/cancel"))
    assert response.status_code == 302
    running.refresh_from_db()
    assert running.status == "cancelled"
    again = admin.post(page(alice, f"jobs/{running.public_id}/cancel"), follow=True)
    assert "already cancelled" in again.content.decode()


def test_writes_need_the_csrf_token(make_member: Callable[..., Any], alice: Tenant) -> None:
    webhook(alice, "weather")
    running = job(alice)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_member(alice, "owner"))
    assert browser.post(page(alice, "new"), form(id="other")).status_code == 403
    assert browser.post(page(alice, "weather/delete")).status_code == 403
    assert browser.post(page(alice, f"jobs/{running.public_id}/cancel")).status_code == 403
    assert tool_row(alice, "other") is None and tool_row(alice, "weather") is not None
    running.refresh_from_db()
    assert running.status == "running"


def test_another_team_never_sees_the_tools_or_jobs(
    console_for: Callable[..., Client], alice: Tenant, charlie: Tenant
) -> None:
    webhook(charlie, "charlie-hook")
    theirs = job(charlie, tool="charlie-hook")
    owner = console_for(alice, "owner")
    for url in (page(charlie), page(charlie, "jobs"), page(charlie, f"jobs/{theirs.public_id}"),
                page(charlie, "charlie-hook/edit"), page(charlie, "new")):  # fmt: skip
        assert owner.get(url).status_code == 404, url
    body = owner.get(page(alice)).content.decode() + owner.get(page(alice, "jobs")).content.decode()
    assert "charlie-hook" not in body and theirs.public_id not in body
    assert owner.get(page(alice, f"jobs/{theirs.public_id}")).status_code == 404
    assert owner.post(page(alice, f"jobs/{theirs.public_id}/cancel")).status_code == 404
    assert owner.get(page(alice, "charlie-hook/edit")).status_code == 404
    assert owner.post(page(alice, "charlie-hook/delete")).status_code == 404
    # Registering the same id in alice's team makes alice's own tool; charlie's is untouched.
    assert (
        owner.post(page(alice, "new"), form(id="charlie-hook", url="http://127.0.0.1:7/a")).status_code == 201
    )
    assert tool_row(charlie, "charlie-hook").webhook_url == HOOK  # type: ignore[union-attr]
    theirs.refresh_from_db()
    assert theirs.status == "running"
