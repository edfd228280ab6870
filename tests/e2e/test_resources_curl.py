"""The seed's resource examples with curl against the real server (the README's commands)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create
from tests.e2e.conftest import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def curl(*args: str) -> tuple[int, dict]:
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_seed_resource_examples_with_curl(slop_server: LiveServer, tmp_path: Path) -> None:
    tenant = Tenant.objects.create(slug="curl-resources", name="Curl")
    auth = f"Authorization: Bearer {api_key_create(tenant=tenant, scopes='resources.*').plaintext}"
    url = slop_server.url
    json_type = "Content-Type: application/json"

    status, body = curl(
        "-X", "POST", f"{url}/resources", "-H", auth, "-H", json_type, "-d",
        '{"id": "notes/hello", "title": "Hello Notes", "type": "note", "content": "This is a new resource", '
        '"metadata": {"created_by": "user_123", "tags": ["notes", "hello"]}}',
    )  # fmt: skip
    assert status == 201 and body["status"] == "created"
    assert body["resource"]["metadata"]["created_at"]
    status, body = curl(
        "-X", "POST", f"{url}/resources", "-H", auth, "-H", json_type, "-d",
        '{"id": "notes/hello", "title": "Again"}',
    )  # fmt: skip
    assert status == 409

    status, body = curl(
        "-X", "PUT", f"{url}/resources/notes/hello", "-H", auth, "-H", json_type, "-d",
        '{"title": "Updated Hello Notes", "content": "This content has been updated", '
        '"metadata": {"tags": ["notes", "hello", "updated"]}}',
    )  # fmt: skip
    assert status == 200 and body["status"] == "updated"
    assert body["resource"]["metadata"]["created_by"] == "user_123"
    assert body["resource"]["metadata"]["updated_at"]

    status, body = curl(
        "-X", "POST", f"{url}/resources", "-H", auth, "-H", json_type, "-d",
        '{"id": "mars-101", "title": "Mars: The Red Planet", "type": "article", '
        '"content": "Mars is the fourth planet from the Sun and the second-smallest planet."}',
    )  # fmt: skip
    assert status == 201
    notes = tmp_path / "todo.md"
    notes.write_text("# To-Do\n\n- water the tomatoes\n- renew the TLS certificate\n")
    status, body = curl(
        "-X", "POST", f"{url}/resources", "-H", auth, "-F", f"file=@{notes}", "-F", "id=notes/todo",
        "-F", "title=To-Do List", "-F", "type=note",
    )  # fmt: skip
    assert status == 201, body
    assert "renew the TLS certificate" in body["resource"]["content"]

    status, body = curl(f"{url}/resources/prefix/notes", "-H", auth)
    assert status == 200
    assert sorted(item["id"] for item in body["resources"]) == ["notes/hello", "notes/todo"]

    status, body = curl(f"{url}/resources/search?q=mars", "-H", auth)
    assert status == 200 and body["results"][0]["id"] == "mars-101"
    status, body = curl(f"{url}/resources/search?q=certificate%20renewal", "-H", auth)
    assert body["results"][0]["id"] == "notes/todo"
    status, body = curl(f"{url}/resources/search", "-H", auth)
    assert status == 400

    status, body = curl(f"{url}/resources/mars-101", "-H", auth)
    assert status == 200 and body["title"] == "Mars: The Red Planet"
    status, body = curl("-X", "DELETE", f"{url}/resources/notes/hello", "-H", auth)
    assert status == 200 and body == {"status": "deleted", "id": "notes/hello"}
    status, body = curl(f"{url}/resources/notes/hello", "-H", auth)
    assert status == 404


def test_oversize_and_unsupported_uploads_over_http(slop_server: LiveServer, tmp_path: Path) -> None:
    tenant = Tenant.objects.create(slug="curl-uploads", name="Curl uploads")
    auth = f"Authorization: Bearer {api_key_create(tenant=tenant, scopes='resources.*').plaintext}"
    big = tmp_path / "big.txt"
    with big.open("wb") as handle:
        handle.truncate(20 * 1024 * 1024 + 1)
    status, body = curl("-X", "POST", f"{slop_server.url}/resources", "-H", auth, "-F", f"file=@{big}")
    assert status == 413 and body["code"] == "payload_too_large"
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    status, body = curl("-X", "POST", f"{slop_server.url}/resources", "-H", auth, "-F", f"file=@{image}")
    assert status == 415 and body["code"] == "unsupported_media_type"
