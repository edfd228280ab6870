"""The operators' admin for tools: schema checked on save, secret shown once, jobs listed."""

from __future__ import annotations

import json

import pytest

from apps.tools.models import Tool, ToolJob

pytestmark = pytest.mark.django_db


def add_form(tenant_id: int, **overrides: str) -> dict[str, str]:
    return {
        "tenant": str(tenant_id),
        "slug": "weather",
        "kind": "webhook",
        "description": "Gets current weather",
        "schema": json.dumps({"type": "object", "properties": {"location": {"type": "string"}}}),
        "example": "null",
        "timeout_seconds": "5",
        "enabled": "on",
        "webhook_url": "https://tools.example.com/weather",
        **overrides,
    }


def test_create_a_webhook_tool(admin_client, alice) -> None:
    response = admin_client.post("/admin/tools/tool/add/", add_form(alice.pk), follow=True)
    assert response.status_code == 200
    tool = Tool.objects.for_tenant(alice).get(slug="weather")
    assert tool.signing_secret.startswith("whsec_")
    assert tool.signing_secret in response.content.decode()  # shown once, in the message


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("schema", json.dumps({"type": "array"}), "must describe an object"),
        ("webhook_url", "http://169.254.169.254/latest", "link-local"),
        ("slug", "jobs", "reserved"),
        ("slug", "calculator", "built-in"),
    ],
)
def test_bad_tools_are_refused(admin_client, alice, field: str, value: str, message: str) -> None:
    response = admin_client.post("/admin/tools/tool/add/", add_form(alice.pk, **{field: value}))
    assert response.status_code == 200  # the form again, with the error
    assert message in response.content.decode()
    assert not Tool.objects.unscoped().exists()


def test_rotate_and_recent_jobs(admin_client, alice) -> None:
    tool = Tool.objects.create(
        tenant=alice, slug="weather", webhook_url="https://x.example", signing_secret="whsec_old-old-old-old"
    )
    ToolJob.objects.create(
        tenant=alice, public_id="job_ADMIN1", tool=tool, tool_slug="weather", timeout_seconds=5,
        status="failed", error="Webhook tool weather failed: no answer within 5 seconds",
    )  # fmt: skip
    page = admin_client.get(f"/admin/tools/tool/{tool.pk}/change/").content.decode()
    assert "job_ADMIN1" in page and "no answer within 5 seconds" in page
    response = admin_client.post(
        "/admin/tools/tool/", {"action": "rotate_signing_secret", "_selected_action": [tool.pk]}, follow=True
    )
    tool.refresh_from_db()
    assert tool.signing_secret != "whsec_old-old-old-old"
    assert tool.signing_secret in response.content.decode()
    jobs = admin_client.get(f"/admin/tools/tooljob/?tenant__id__exact={alice.pk}").content.decode()
    assert "job_ADMIN1" in jobs


def test_ids_are_unique_per_team(admin_client, alice, charlie) -> None:
    assert admin_client.post("/admin/tools/tool/add/", add_form(alice.pk)).status_code == 302
    again = admin_client.post("/admin/tools/tool/add/", add_form(alice.pk))
    assert again.status_code == 200 and "already has a tool called weather" in again.content.decode()
    assert admin_client.post("/admin/tools/tool/add/", add_form(charlie.pk)).status_code == 302
    assert Tool.objects.unscoped().filter(slug="weather").count() == 2
