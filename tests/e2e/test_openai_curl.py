"""The README's /v1 curl lines, as written, against the real server: each answers what its comment
says (models, a completion, a stream, a client tool call, an agent, a refused parameter)."""

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
SEPARATOR = "\n--8<--\n"


def _readme_block() -> str:
    text = README.read_text()
    section = text[text.index("## OpenAI API (`/v1`") :]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def test_the_readme_openai_curl_lines_work(slop_server: LiveServer) -> None:
    tenant = Tenant.objects.create(slug="curl-openai", name="Curl OpenAI")
    key = api_key_create(tenant=tenant, scopes="chat.*,agents.*").plaintext
    script = _readme_block().replace("http://localhost:8000", slop_server.url)
    script = re.sub(r"^KEY=.*$", f"KEY={key}", script, flags=re.MULTILINE)
    script = re.sub(
        r"curl -sN? ", "curl -sS -w '\\n%{http_code}" + SEPARATOR.replace("\n", "\\n") + "' ", script
    )
    done = subprocess.run(["bash", "-euc", script], capture_output=True, text=True, timeout=120, check=True)
    answers = []
    for piece in done.stdout.split(SEPARATOR)[:-1]:
        body, status = piece.rsplit("\n", 1)
        answers.append((int(status), body))
    assert [status for status, _ in answers] == [200, 200, 200, 200, 201, 200, 400], answers
    models, completion, streamed, tool_call, _, agent, refused = (body for _, body in answers)
    assert "echo" in [model["id"] for model in json.loads(models)["data"]]
    assert json.loads(completion)["choices"][0]["message"]["content"] == "Hello there"
    events = [line[6:] for line in streamed.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and json.loads(events[-2])["usage"]["completion_tokens"] == 2
    (call,) = json.loads(tool_call)["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"]) == {
        "city": "Paris"
    }
    assert json.loads(agent)["choices"][0]["message"]["content"] == "My order is late"
    assert json.loads(refused)["error"]["param"] == "top_p"
