"""The Resources page: browse, hybrid search with snippets, view, edit, create, delete and upload."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from apps.resources.models import Resource
from apps.resources.services import resource_create
from apps.tenants.models import Tenant
from apps.tools.models import ToolJob

pytestmark = pytest.mark.django_db
XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


def page(team: Tenant, name: str = "", **query: str) -> str:
    url = f"/console/t/{team.slug}/resources/{name}"
    return f"{url}?{urlencode(query)}" if query else url


def resource(team: Tenant, resource_id: str) -> Resource | None:
    return Resource.objects.for_tenant(team).filter(path=resource_id).first()


@pytest.fixture
def documents(alice: Tenant, charlie: Tenant) -> None:
    resource_create(
        tenant=alice,
        resource_id="notes/hello",
        title="Hello notes",
        content="The quarterly review of the espresso machine is on Tuesday.",
        metadata={"author": "ann"},
    )
    resource_create(
        tenant=alice, resource_id="guides/onboarding", title="Onboarding", content="Welcome aboard."
    )
    resource_create(
        tenant=charlie,
        resource_id="secret/roadmap",
        title="Charlie roadmap",
        content="Zanzibar expansion plans.",
    )


def test_a_member_browses_by_prefix(
    console_for: Callable[..., Client], alice: Tenant, documents: None
) -> None:
    console = console_for(alice, "member")
    everything = console.get(page(alice)).content.decode()
    assert "notes/hello" in everything and "guides/onboarding" in everything
    notes = console.get(page(alice, "list", prefix="notes/")).content.decode()
    assert "notes/hello" in notes and "guides/onboarding" not in notes


def test_the_list_is_paginated(console_for: Callable[..., Client], alice: Tenant) -> None:
    for index in range(27):
        resource_create(tenant=alice, resource_id=f"many/{index:02d}", title=f"Doc {index}")
    console = console_for(alice, "member")
    first = console.get(page(alice)).content.decode()
    assert len(re.findall(r"<code>many/", first)) == 25
    next_link = first.split('hx-get="')[-1].split('"')[0].replace("&amp;", "&")
    second = console.get(next_link).content.decode()
    assert set(re.findall(r"<code>(many/\d+)</code>", first + second)) == {f"many/{i:02d}" for i in range(27)}


def test_search_shows_snippets_and_scores(
    console_for: Callable[..., Client], alice: Tenant, documents: None
) -> None:
    body = console_for(alice, "member").get(page(alice, "search", q="espresso", limit="5")).content.decode()
    assert "notes/hello" in body and "guides/onboarding" not in body
    assert '<p class="snippet">The quarterly review of the espresso machine' in body
    score = float(re.findall(r'data-score="([^"]+)"', body)[0])
    assert 0 < score <= 1


def test_a_resource_shows_content_and_metadata(
    console_for: Callable[..., Client], alice: Tenant, documents: None
) -> None:
    body = console_for(alice, "member").get(page(alice, "item", id="notes/hello")).content.decode()
    assert "espresso machine" in body and "&quot;author&quot;: &quot;ann&quot;" in body
    assert "By words and by meaning" in body
    assert "Edit" not in body  # a member reads only


def test_members_are_read_only(console_for: Callable[..., Client], alice: Tenant, documents: None) -> None:
    member = console_for(alice, "member")
    assert "Upload a file" not in member.get(page(alice)).content.decode()
    for url in (page(alice, "new"), page(alice, "upload"), page(alice, "edit", id="notes/hello"),
                page(alice, "delete", id="notes/hello")):  # fmt: skip
        assert member.get(url).status_code == 403, url
    assert member.post(page(alice, "new"), {"id": "x", "title": "X"}).status_code == 403
    assert (
        member.post(page(alice, "edit", id="notes/hello"), {"title": "Changed", "content": ""}).status_code
        == 403
    )
    assert member.post(page(alice, "delete", id="notes/hello")).status_code == 403
    upload = SimpleUploadedFile("note.txt", b"hello", content_type="text/plain")
    assert member.post(page(alice, "upload"), {"file": upload}, **XHR).status_code == 403
    assert resource(alice, "x") is None and resource(alice, "note.txt") is None
    assert resource(alice, "notes/hello").title == "Hello notes"  # type: ignore[union-attr]


def test_an_admin_creates_edits_and_deletes(
    console_for: Callable[..., Client], alice: Tenant, documents: None
) -> None:
    admin = console_for(alice, "admin")
    created = admin.post(
        page(alice, "new"),
        {
            "id": "notes/todo",
            "title": "To do",
            "type": "list",
            "content": "Buy oat milk",
            "metadata": '{"n": 1}',
        },
    )
    assert created.status_code == 302
    row = resource(alice, "notes/todo")
    assert row is not None and row.type == "list" and row.metadata["n"] == 1 and "created_at" in row.metadata

    edit_form = admin.get(page(alice, "edit", id="notes/todo")).content.decode()
    assert "Buy oat milk" in edit_form
    saved = admin.post(
        page(alice, "edit", id="notes/todo"),
        {
            "title": "To do today",
            "type": "list",
            "content": "Buy oat milk\r\nand bread",
            "metadata": '{"m": 2}',
        },
    )
    assert saved.status_code == 302
    row = resource(alice, "notes/todo")
    assert row is not None and row.title == "To do today" and row.content == "Buy oat milk\nand bread"
    assert row.metadata["n"] == 1 and row.metadata["m"] == 2 and "updated_at" in row.metadata  # merged
    assert "bread" in admin.get(page(alice, "search", q="bread", limit="3")).content.decode()

    assert admin.get(page(alice, "delete", id="notes/todo")).status_code == 200
    assert resource(alice, "notes/todo") is not None
    assert admin.post(page(alice, "delete", id="notes/todo")).status_code == 302
    assert resource(alice, "notes/todo") is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": "search", "title": "X"}, "is a route"),
        ({"id": "a//b", "title": "X"}, "empty segments"),
        ({"id": "notes/hello", "title": "Dup"}, "already exists"),
        ({"id": "ok", "title": "   "}, "may not be blank"),
        ({"id": "ok", "title": "X", "metadata": "[1, 2]"}, "Must be a JSON object"),
        ({"id": "ok", "title": "X", "metadata": "{oops"}, "Not valid JSON"),
    ],
)
def test_bad_input_on_create_changes_nothing(
    console_for: Callable[..., Client], alice: Tenant, documents: None, fields: dict[str, str], message: str
) -> None:
    response = console_for(alice, "owner").post(page(alice, "new"), {"content": "", **fields})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Resource.objects.for_tenant(alice).count() == 2
    assert resource(alice, "notes/hello").title == "Hello notes"  # type: ignore[union-attr]


def test_bad_input_on_edit_changes_nothing(
    console_for: Callable[..., Client], alice: Tenant, documents: None
) -> None:
    response = console_for(alice, "owner").post(
        page(alice, "edit", id="notes/hello"), {"title": "New title", "content": "x", "metadata": '"text"'}
    )
    assert response.status_code == 400 and "Must be a JSON object" in response.content.decode()
    row = resource(alice, "notes/hello")
    assert row is not None and row.title == "Hello notes" and "espresso" in row.content


def test_an_upload_becomes_a_resource_and_is_found(
    console_for: Callable[..., Client], alice: Tenant, documents: None
) -> None:
    admin = console_for(alice, "admin")
    upload = SimpleUploadedFile(
        "harbour.md", b"# Harbour\n\nThe ferry to Belle-Ile leaves at noon.", content_type="text/markdown"
    )
    response = admin.post(page(alice, "upload"), {"file": upload, "id": "docs/harbour"}, **XHR)
    assert response.status_code == 201, response.content
    assert "docs/harbour" in response.content.decode()
    row = resource(alice, "docs/harbour")
    assert row is not None and row.type == "file" and row.title == "harbour.md"
    assert row.metadata["file"]["kind"] == "markdown" and "Belle-Ile" in row.content
    assert "docs/harbour" in admin.get(page(alice, "search", q="ferry", limit="3")).content.decode()


def test_an_upload_without_script_redirects_to_the_resource(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    upload = SimpleUploadedFile("plain.txt", b"Lighthouse keepers log.", content_type="text/plain")
    response = console_for(alice, "owner").post(page(alice, "upload"), {"file": upload})
    assert response.status_code == 302 and "plain.txt" in response["Location"]
    assert resource(alice, "plain.txt") is not None


@override_settings(RESOURCES_ASYNC_INDEX_CHARS=2_000)
def test_a_large_upload_is_a_job_shown_live(console_for: Callable[..., Client], alice: Tenant) -> None:
    admin = console_for(alice, "admin")
    text = " ".join(f"Paragraph {i} on the maintenance of tide gauges." for i in range(100))
    upload = SimpleUploadedFile("gauges.txt", text.encode(), content_type="text/plain")
    response = admin.post(page(alice, "upload"), {"file": upload}, **XHR)  # no commit: the job stays queued
    assert response.status_code == 202
    body = response.content.decode()
    assert "searchable by words now, by meaning when the job ends" in body
    job = ToolJob.objects.for_tenant(alice).get()
    assert job.tool_slug == "resources.index" and job.public_id in body
    assert 'hx-trigger="every 1s"' in body  # the status polls while the job is unfinished
    status = admin.get(f"/console/t/{alice.slug}/tools/jobs/{job.public_id}?done=meaning")
    assert status.status_code == 200 and 'data-status="queued"' in status.content.decode()
    # Found by words already.
    assert "gauges.txt" in admin.get(page(alice, "search", q="tide gauges", limit="3")).content.decode()
    ToolJob.objects.for_tenant(alice).filter(pk=job.pk).update(status="succeeded")
    done = admin.get(f"/console/t/{alice.slug}/tools/jobs/{job.public_id}?done=meaning").content.decode()
    assert 'data-status="succeeded"' in done and "hx-trigger" not in done and "by meaning now" in done


@pytest.mark.parametrize(
    ("name", "content", "content_type", "message"),
    [
        ("tool.exe", b"MZ\x90\x00", "application/x-msdownload", "Unsupported file type"),
        ("bad.pdf", b"not a pdf at all", "application/pdf", "could not be read"),
        ("search", b"hello", "text/plain", "is a route"),
    ],
)
def test_a_bad_upload_is_an_error_and_stores_nothing(
    console_for: Callable[..., Client],
    alice: Tenant,
    name: str,
    content: bytes,
    content_type: str,
    message: str,
) -> None:
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    response = console_for(alice, "admin").post(page(alice, "upload"), {"file": upload}, **XHR)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Resource.objects.for_tenant(alice).count() == 0


def test_an_upload_over_the_limit_is_refused(
    console_for: Callable[..., Client], alice: Tenant, settings: Any
) -> None:
    settings.RESOURCES_MAX_UPLOAD_BYTES = 1024
    upload = SimpleUploadedFile("big.txt", b"x" * 5000, content_type="text/plain")
    response = console_for(alice, "admin").post(page(alice, "upload"), {"file": upload}, **XHR)
    assert response.status_code == 400 and "the limit is 1024 bytes" in response.content.decode()
    assert Resource.objects.for_tenant(alice).count() == 0


def test_writes_need_the_csrf_token(make_member: Callable[..., Any], alice: Tenant, documents: None) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_member(alice, "owner"))
    assert browser.post(page(alice, "new"), {"id": "x", "title": "X"}).status_code == 403
    assert browser.post(page(alice, "delete", id="notes/hello")).status_code == 403
    upload = SimpleUploadedFile("n.txt", b"hello", content_type="text/plain")
    assert browser.post(page(alice, "upload"), {"file": upload}, **XHR).status_code == 403
    assert Resource.objects.for_tenant(alice).count() == 2


def test_another_team_never_sees_the_resources(
    console_for: Callable[..., Client], alice: Tenant, charlie: Tenant, documents: None
) -> None:
    owner = console_for(alice, "owner")
    for url in (page(charlie), page(charlie, "list"), page(charlie, "search", q="Zanzibar", limit="5"),
                page(charlie, "item", id="secret/roadmap"), page(charlie, "new")):  # fmt: skip
        assert owner.get(url).status_code == 404, url
    upload = SimpleUploadedFile("n.txt", b"hello", content_type="text/plain")
    assert owner.post(page(charlie, "upload"), {"file": upload}).status_code == 404
    listing = (
        owner.get(page(alice)).content.decode()
        + owner.get(page(alice, "list", prefix="secret/")).content.decode()
    )
    search = owner.get(page(alice, "search", q="Zanzibar expansion", limit="50")).content.decode()
    assert "secret/roadmap" not in listing and "secret/roadmap" not in search and "Zanzibar" not in search
    for name in ("item", "edit", "delete"):
        assert owner.get(page(alice, name, id="secret/roadmap")).status_code == 404, name
    assert owner.post(page(alice, "delete", id="secret/roadmap")).status_code == 404
    assert (
        owner.post(page(alice, "edit", id="secret/roadmap"), {"title": "Mine", "content": ""}).status_code
        == 404
    )
    row = resource(charlie, "secret/roadmap")
    assert row is not None and row.title == "Charlie roadmap"
