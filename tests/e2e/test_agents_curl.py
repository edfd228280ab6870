"""The README's /agents curl lines, as written, against the real server: each answers what its
comment says, in order (create two, read, list, update, delete both)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create
from tests.e2e.conftest import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_block() -> str:
    text = README.read_text()
    section = text[text.index("## Agents (`/agents`") :]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def test_the_readme_agents_curl_lines_work(slop_server: LiveServer) -> None:
    tenant = Tenant.objects.create(slug="curl-agents", name="Curl agents")
    key = api_key_create(tenant=tenant, scopes="agents.*").plaintext
    script = _readme_block().replace("http://localhost:8000", slop_server.url)
    script = re.sub(r"^KEY=.*$", f"KEY={key}", script, flags=re.MULTILINE)
    # Each answer on its own line, followed by its status.
    script = script.replace("curl -s ", "curl -sS -w '\\n%{http_code}\\n' ")
    done = subprocess.run(["bash", "-euc", script], capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.strip().split("\n")
    answers = [(int(lines[i + 1]), json.loads(lines[i])) for i in range(0, len(lines), 2)]
    assert [status for status, _ in answers] == [201, 201, 200, 200, 200, 200, 200], answers
    (_, billing), (_, support), (_, one), (_, listing), (_, updated), (_, gone), (_, gone_too) = answers
    assert billing["agent"]["tools"] == ["calculator", "memory_search", "memory_write"]
    assert support["agent"]["handoffs"] == ["billing"] and one["id"] == "support"
    assert [agent["id"] for agent in listing["agents"]] == ["support", "billing"]
    assert updated["agent"]["description"] == "Product questions, bugs and how-tos"
    assert gone == {"status": "deleted", "id": "support"} and gone_too == {
        "status": "deleted",
        "id": "billing",
    }
