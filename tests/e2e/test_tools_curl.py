"""The seed's tool examples, verbatim with curl, against the real server (plus the API key)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def curl(*args: str) -> tuple[int, Any]:
    done = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True, check=True, timeout=30
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_seed_tool_examples(slop_server, alice, make_key) -> None:
    key = make_key(alice)
    auth = f"Authorization: Bearer {key}"

    status, body = curl(f"{slop_server.url}/tools", "-H", auth)
    assert status == 200
    assert {"id": "calculator", "description": "Performs mathematical calculations"}.items() <= body["tools"][
        0
    ].items()

    status, body = curl(
        "-X", "POST", f"{slop_server.url}/tools/calculator",
        "-H", auth, "-H", "Content-Type: application/json",
        "-d", '{"expression": "15 * 7"}',
    )  # fmt: skip
    assert (status, body) == (200, {"result": 105})

    status, body = curl(f"{slop_server.url}/tools/calculator", "-H", auth)
    assert status == 200
    assert body["example"] == "15 * 7"
    assert body["parameters"]["expression"] == {
        "type": "string",
        "description": "Mathematical expression to evaluate",
    }

    # The scope-header examples: allowed within scope, blocked outside it.
    status, body = curl(
        "-X", "POST", f"{slop_server.url}/tools/calculator",
        "-H", auth, "-H", "X-SLOP-Scope: tools.calculator.execute", "-H", "Content-Type: application/json",
        "-d", '{"expression": "2 + 2"}',
    )  # fmt: skip
    assert (status, body) == (200, {"result": 4})
    status, body = curl(
        "-X", "POST", f"{slop_server.url}/tools/system-cmd",
        "-H", auth, "-H", "X-SLOP-Scope: tools.calculator.execute", "-H", "Content-Type: application/json",
        "-d", '{"cmd": "rm -rf /"}',
    )  # fmt: skip
    assert status == 403
    assert body["error"] == "Scope violation: tools.system-cmd.execute requires explicit permission"
    assert body["permitted"] is False


def test_hostile_calculator_input_over_http(slop_server, alice, make_key) -> None:
    auth = f"Authorization: Bearer {make_key(alice)}"
    for expression in (
        "9**9**9",
        "4000000**4000000",
        "__import__('os')",
        "().__class__",
        "(" * 10000 + "1" + ")" * 10000,
    ):
        status, body = curl(
            "-X", "POST", f"{slop_server.url}/tools/calculator",
            "-H", auth, "-H", "Content-Type: application/json",
            "-d", json.dumps({"expression": expression}),
        )  # fmt: skip
        assert status == 400, body
        assert body["code"] == "validation_error"
