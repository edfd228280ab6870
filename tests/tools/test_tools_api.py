"""GET/POST/PUT/DELETE /tools and /tools/:id: the seed's examples, scopes, tenants, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from apps.tools.builtins import BUILTINS
from apps.tools.models import Tool

BUILTIN_IDS = list(BUILTINS)  # every tenant has them, listed first
SAFE_BUILTIN_IDS = [tool_id for tool_id, builtin in BUILTINS.items() if builtin.safe]  # memory_write writes

pytestmark = pytest.mark.django_db

WEATHER = {
    "description": "Gets current weather",
    "url": "https://tools.example.com/weather",
    "parameters": {"location": {"type": "string", "description": "City"}},
}


def register(client: Any, tool_id: str = "weather", **overrides: Any) -> dict[str, Any]:
    response = client.put(f"/tools/{tool_id}", {**WEATHER, **overrides}, format="json")
    assert response.status_code in (200, 201), response.json()
    return response.json()


# --- GET /tools ---------------------------------------------------------------------------------


def test_list_has_the_seed_shape(alice_client) -> None:
    response = alice_client.get("/tools")
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    calculator = body["tools"][0]
    assert calculator == {
        "id": "calculator",
        "description": "Performs mathematical calculations",
        "parameters": {
            "expression": {"type": "string", "description": "Mathematical expression to evaluate"}
        },
        "safe": True,
        "long_running": False,
    }


def test_list_needs_tools_list(client_for, alice) -> None:
    response = client_for(alice, "tools.calculator.execute").get("/tools")
    assert response.status_code == 403
    assert response.json() == {
        "error": "Scope violation: tools.list requires explicit permission",
        "permitted": False,
        "required_scope": "tools.list",
        "code": "scope_violation",
        "status": 403,
    }


def test_list_shows_only_tools_the_caller_may_read_or_execute(alice_client, client_for, alice) -> None:
    register(alice_client, "weather")
    register(alice_client, "deploy", safe=False)
    register(alice_client, "lookup", safe=True)
    ids = lambda client: [tool["id"] for tool in client.get("/tools").json()["tools"]]  # noqa: E731
    assert ids(alice_client) == [*BUILTIN_IDS, "deploy", "lookup", "weather"]
    assert ids(client_for(alice, "tools.list,tools.weather.read")) == ["weather"]
    assert ids(client_for(alice, "tools.list,tools.deploy.execute")) == ["deploy"]
    assert ids(client_for(alice, "tools.list,tools.safe.*")) == [*SAFE_BUILTIN_IDS, "lookup"]
    assert ids(client_for(alice, "tools.*", scope_header="tools.list,tools.safe.lookup")) == ["lookup"]
    assert ids(client_for(alice, "tools.list")) == []


def test_list_pages(alice_client) -> None:
    for name in ("a1", "a2", "a3"):
        register(alice_client, name)
    seen: list[str] = []
    page = alice_client.get("/tools?limit=2").json()
    while True:
        assert len(page["tools"]) <= 2
        seen.extend(tool["id"] for tool in page["tools"])
        if page["next_cursor"] is None:
            break
        page = alice_client.get(f"/tools?limit=2&cursor={page['next_cursor']}").json()
    assert seen == [*BUILTIN_IDS, "a1", "a2", "a3"]


@pytest.mark.parametrize("query", ["limit=0", "limit=500", "limit=x", "cursor=nonsense", "cursor=WzEsMl0"])
def test_list_bad_paging(alice_client, query: str) -> None:
    response = alice_client.get(f"/tools?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_list_never_shows_another_teams_tools(alice_client, charlie_client) -> None:
    register(alice_client, "alice-secret-tool")
    ids = [tool["id"] for tool in charlie_client.get("/tools").json()["tools"]]
    assert ids == BUILTIN_IDS


def test_list_needs_a_key(client) -> None:
    response = client.get("/tools")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


# --- GET /tools/:id -----------------------------------------------------------------------------


def test_detail_has_the_seed_shape(alice_client) -> None:
    body = alice_client.get("/tools/calculator").json()
    assert body["id"] == "calculator"
    assert body["parameters"] == {
        "expression": {"type": "string", "description": "Mathematical expression to evaluate"}
    }
    assert body["example"] == "15 * 7"
    assert body["schema"]["required"] == ["expression"]


def test_detail_scopes(alice_client, client_for, alice) -> None:
    register(alice_client, "weather")
    denied = client_for(alice, "tools.weather.execute").get("/tools/weather")
    assert denied.status_code == 403
    assert denied.json()["required_scope"] == "tools.weather.read"
    reader = client_for(alice, "tools.weather.read").get("/tools/weather")
    assert reader.status_code == 200
    assert "url" not in reader.json() and "signing_secret" not in reader.json()
    assert alice_client.get("/tools/weather").json()["url"] == WEATHER["url"]
    # A safe-tools scope reads safe tools.
    assert client_for(alice, "tools.safe.*").get("/tools/calculator").status_code == 200


def test_detail_of_a_missing_or_foreign_tool_is_404(alice_client, charlie_client) -> None:
    register(alice_client, "weather")
    for client, path in ((alice_client, "/tools/nope"), (charlie_client, "/tools/weather")):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


# --- POST /tools/:id ----------------------------------------------------------------------------


def test_seed_calculator_example(client_for, alice) -> None:
    client = client_for(alice, "tools.*", scope_header="tools.calculator.execute")
    response = client.post("/tools/calculator", {"expression": "15 * 7"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"result": 105}


def test_seed_blocked_example(client_for, alice) -> None:
    client = client_for(alice, "*", scope_header="tools.calculator.execute")
    response = client.post("/tools/system-cmd", {"cmd": "rm -rf /"}, format="json")
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "Scope violation: tools.system-cmd.execute requires explicit permission"
    assert body["permitted"] is False


def test_envelope_body_is_accepted(alice_client) -> None:
    response = alice_client.post(
        "/tools/calculator", {"tool_id": "calculator", "parameters": {"expression": "2+2"}}, format="json"
    )
    assert response.json() == {"result": 4}


def test_current_time_with_a_time_zone(alice_client) -> None:
    result = alice_client.post("/tools/current_time", {"timezone": "Asia/Kolkata"}, format="json").json()[
        "result"
    ]
    assert result["timezone"] == "Asia/Kolkata"
    assert result["utc_offset"] == "+05:30"
    assert result["iso"].endswith("+05:30")
    assert (
        alice_client.post("/tools/current_time", {}, format="json").json()["result"]["utc_offset"] == "+00:00"
    )


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/tools/calculator", {}, "expression"),
        ("/tools/calculator", {"expression": ["1"]}, "expression"),
        ("/tools/calculator", {"tool_id": "current_time", "parameters": {}}, "tool_id"),
        ("/tools/calculator", {"parameters": "1+1"}, "parameters"),
        ("/tools/current_time", {"timezone": "Mars/Olympus"}, "timezone"),
        ("/tools/current_time", {"timezone": "../../../etc/passwd"}, "timezone"),
        ("/tools/current_time", {"timezone": 5}, "timezone"),
    ],
)
def test_execute_bad_parameters(alice_client, path: str, body: dict[str, Any], field: str) -> None:
    response = alice_client.post(path, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["details"]


@pytest.mark.parametrize("body", ['"15 * 7"', "[1]", "{not json", "null"])
def test_execute_body_must_be_an_object(alice_client, body: str) -> None:
    response = alice_client.post("/tools/calculator", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] in ("invalid_request", "validation_error")


@pytest.mark.parametrize("query", ["async=maybe", "wait=-1", "wait=99", "wait=soon"])
def test_execute_bad_query(alice_client, query: str) -> None:
    response = alice_client.post(f"/tools/calculator?{query}", {"expression": "1"}, format="json")
    assert response.status_code == 400


def test_execute_scopes_for_safe_tools(alice_client, client_for, alice) -> None:
    register(alice_client, "deploy", safe=False)
    safe_all = client_for(alice, "tools.safe.*")
    assert safe_all.post("/tools/calculator", {"expression": "1+1"}, format="json").json() == {"result": 2}
    denied = safe_all.post("/tools/deploy", {"location": "x"}, format="json")
    assert denied.status_code == 403
    assert denied.json()["required_scope"] == "tools.deploy.execute"
    one_safe = client_for(alice, "tools.safe.calculator")
    assert one_safe.post("/tools/calculator", {"expression": "1"}, format="json").status_code == 200
    assert one_safe.post("/tools/current_time", {}, format="json").status_code == 403
    # The header narrows the key: a key with tools.* limited to safe tools by the header.
    narrowed = client_for(alice, "tools.*", scope_header="tools.safe.*")
    assert narrowed.post("/tools/deploy", {}, format="json").status_code == 403
    # …and cannot widen it.
    widened = client_for(alice, "tools.safe.*", scope_header="tools.*")
    assert widened.post("/tools/deploy", {}, format="json").status_code == 403


def test_a_tool_literally_named_safe(alice_client, client_for, alice, webhook_server) -> None:
    register(alice_client, "safe", safe=False, url=f"{webhook_server.url}/echo", signing_secret="s" * 20)
    webhook_server.secret = "s" * 20
    by_name = client_for(alice, "tools.safe.execute")
    response = by_name.post("/tools/safe", {"location": "Paris"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"result": {"echo": {"location": "Paris"}}}
    # tools.safe.* is "every safe tool", and this one is not marked safe.
    assert client_for(alice, "tools.safe.*").post("/tools/safe", {}, format="json").status_code == 403


def test_execute_another_teams_tool_is_404(alice_client, charlie_client) -> None:
    register(alice_client, "weather")
    response = charlie_client.post("/tools/weather", {"location": "x"}, format="json")
    assert response.status_code == 404


def test_execute_a_disabled_builtin(alice_client, charlie_client) -> None:
    response = alice_client.put("/tools/calculator", {"enabled": False}, format="json")
    assert response.status_code == 200
    assert response.json()["enabled"] is False
    disabled = alice_client.post("/tools/calculator", {"expression": "1"}, format="json")
    assert disabled.status_code == 409
    assert disabled.json()["code"] == "tool_disabled"
    assert "calculator" not in [tool["id"] for tool in alice_client.get("/tools").json()["tools"]]
    # Only alice's team turned it off.
    assert charlie_client.post("/tools/calculator", {"expression": "1"}, format="json").status_code == 200


def test_async_call_returns_a_job(alice_client, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post("/tools/calculator?async=true", {"expression": "6*7"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["job_id"].startswith("job_")
    assert body["status_url"] == f"/tools/jobs/{body['job_id']}"
    job = alice_client.get(body["status_url"]).json()
    assert job["status"] == "succeeded"
    assert job["result"] == 42
    assert job["tool"] == "calculator"
    assert job["started_at"] and job["finished_at"]


def test_long_running_tools_always_make_jobs(alice_client, django_capture_on_commit_callbacks) -> None:
    alice_client.put("/tools/calculator", {"long_running": True}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post("/tools/calculator", {"expression": "1+1"}, format="json")
    assert response.status_code == 202
    assert alice_client.get(response.json()["status_url"]).json()["result"] == 2


# --- PUT /tools/:id -----------------------------------------------------------------------------


def test_register_replace_and_rotate(alice_client, alice) -> None:
    created = alice_client.put("/tools/weather", WEATHER, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["signing_secret"].startswith("whsec_")
    assert body["parameters"] == WEATHER["parameters"]
    assert body["kind"] == "webhook"
    secret = body["signing_secret"]
    replaced = alice_client.put(
        "/tools/weather", {**WEATHER, "description": "Weather now", "safe": True}, format="json"
    )
    assert replaced.status_code == 200
    assert "signing_secret" not in replaced.json()
    assert replaced.json()["safe"] is True
    row = Tool.objects.for_tenant(alice).get(slug="weather")
    assert row.signing_secret == secret and row.description == "Weather now"
    rotated = alice_client.put("/tools/weather", {**WEATHER, "rotate_secret": True}, format="json").json()
    assert rotated["signing_secret"] != secret
    assert Tool.objects.for_tenant(alice).get(slug="weather").signing_secret == rotated["signing_secret"]


def test_register_accepts_seed_shorthand_and_full_schema(alice_client) -> None:
    short = register(alice_client, "short", parameters={"location": "string"})
    assert short["schema"] == {"type": "object", "properties": {"location": {"type": "string"}}}
    schema = {
        "type": "object",
        "properties": {"unit": {"type": "string", "enum": ["C", "F"]}},
        "required": ["unit"],
        "additionalProperties": False,
    }
    full = register(alice_client, "full", schema=schema, parameters=None)
    assert full["schema"] == schema
    bad = alice_client.post("/tools/full", {"unit": "K"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["details"] == {"unit": ["'K' is not one of ['C', 'F']"]}
    extra = alice_client.post("/tools/full", {"unit": "C", "x": 1}, format="json")
    assert extra.status_code == 400


@pytest.mark.parametrize(
    ("tool_id", "body", "field"),
    [
        ("bad id!", WEATHER, "id"),
        ("x" * 65, WEATHER, "id"),
        ("weather", {**WEATHER, "url": None}, "url"),
        ("weather", {**WEATHER, "url": "ftp://example.com"}, "url"),
        ("weather", {**WEATHER, "url": "http://169.254.169.254/latest/meta-data"}, "url"),
        ("weather", {**WEATHER, "parameters": {"location": "strung"}}, "parameters"),
        ("weather", {**WEATHER, "parameters": [1, 2]}, "parameters"),
        ("weather", {**WEATHER, "schema": {"type": "array"}}, "schema"),
        (
            "weather",
            {**WEATHER, "schema": {"type": "object", "properties": {"a": {"type": "nope"}}}},
            "schema",
        ),
        ("weather", {**WEATHER, "schema": {"type": "object", "$ref": "http://169.254.169.254/x"}}, "schema"),
        ("weather", {**WEATHER, "parameters": {"a": {"type": "string", "pattern": "(a+)+$"}}}, "parameters"),
        ("weather", {**WEATHER, "parameters": {"a": {"type": "string", "pattern": "("}}}, "parameters"),
        ("weather", {**WEATHER, "signing_secret": "short"}, "signing_secret"),
        ("weather", {**WEATHER, "timeout_seconds": 0}, "timeout_seconds"),
        ("weather", {**WEATHER, "timeout_seconds": "10"}, "timeout_seconds"),
        ("weather", {**WEATHER, "safe": "yes"}, "safe"),
        ("weather", {**WEATHER, "description": 5}, "description"),
        ("calculator", {"url": "https://example.com"}, "url"),
        ("calculator", {"enabled": "no"}, "enabled"),
    ],
)
def test_register_bad_input_changes_nothing(
    alice_client, alice, tool_id: str, body: dict[str, Any], field: str
) -> None:
    response = alice_client.put(f"/tools/{tool_id}", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["details"]
    assert not Tool.objects.for_tenant(alice).exists()


def test_jobs_is_not_a_tool_id(alice_client, alice) -> None:
    assert alice_client.put("/tools/jobs", WEATHER, format="json").status_code == 405
    assert alice_client.post("/tools/jobs", {}, format="json").status_code == 405
    assert not Tool.objects.for_tenant(alice).exists()


def test_register_body_must_be_an_object(alice_client) -> None:
    response = alice_client.put("/tools/weather", "[]", content_type="application/json")
    assert response.status_code == 400


def test_register_needs_write_scope(client_for, alice) -> None:
    response = client_for(alice, "tools.weather.execute,tools.weather.read").put(
        "/tools/weather", WEATHER, format="json"
    )
    assert response.status_code == 403
    assert response.json()["required_scope"] == "tools.weather.write"
    assert (
        client_for(alice, "tools.weather.write").put("/tools/weather", WEATHER, format="json").status_code
        == 201
    )


def test_register_never_touches_another_team(alice_client, charlie_client, alice, charlie) -> None:
    register(alice_client, "weather")
    response = charlie_client.put(
        "/tools/weather", {**WEATHER, "url": "https://charlie.example/w"}, format="json"
    )
    assert response.status_code == 201  # charlie's own tool of the same name
    assert Tool.objects.for_tenant(alice).get(slug="weather").webhook_url == WEATHER["url"]
    assert Tool.objects.for_tenant(charlie).get(slug="weather").webhook_url == "https://charlie.example/w"


# --- DELETE /tools/:id --------------------------------------------------------------------------


def test_delete(alice_client, alice) -> None:
    register(alice_client, "weather")
    response = alice_client.delete("/tools/weather")
    assert response.status_code == 200
    assert response.json() == {"status": "deleted", "id": "weather"}
    assert alice_client.get("/tools/weather").status_code == 404
    assert alice_client.delete("/tools/weather").status_code == 404


def test_delete_builtin_is_refused(alice_client) -> None:
    response = alice_client.delete("/tools/calculator")
    assert response.status_code == 409
    assert "disable" in response.json()["error"]


def test_delete_needs_write_scope(alice_client, client_for, alice) -> None:
    register(alice_client, "weather")
    response = client_for(alice, "tools.weather.read,tools.weather.execute").delete("/tools/weather")
    assert response.status_code == 403
    assert Tool.objects.for_tenant(alice).filter(slug="weather").exists()


def test_delete_another_teams_tool_is_404(alice_client, charlie_client, alice) -> None:
    register(alice_client, "weather")
    assert charlie_client.delete("/tools/weather").status_code == 404
    assert Tool.objects.for_tenant(alice).filter(slug="weather").exists()


# --- GET /info ----------------------------------------------------------------------------------


def test_info_lists_the_routes_and_the_callers_tools(alice_client, client_for, alice) -> None:
    register(alice_client, "weather")
    info = alice_client.get("/info").json()
    routes = {endpoint["path"]: endpoint["methods"] for endpoint in info["endpoints"]}
    assert routes["/tools/:tool_id"] == ["DELETE", "GET", "POST", "PUT"]
    assert routes["/tools"] == ["GET"]
    assert "/tools/jobs/:job_id" in routes
    assert routes["/tools/jobs/:job_id/stream"] == ["GET"]
    assert info["tools"] == sorted([*BUILTIN_IDS, "weather"])
    assert client_for(alice, "tools.safe.*").get("/info").json()["tools"] == sorted(SAFE_BUILTIN_IDS)


@pytest.mark.parametrize("tool_id", ["%00", "a%00b"])
def test_tool_ids_with_a_nul_are_a_400_naming_the_id(alice_client, tool_id: str) -> None:
    for method in ("get", "post", "delete", "put"):
        response = getattr(alice_client, method)(f"/tools/{tool_id}", WEATHER, format="json")
        assert response.status_code == 400
        assert "tool_id" in response.json()["details"]


@pytest.mark.parametrize("tool_id", ["x" * 5000, "%F0%9F%92%A9"])
def test_odd_tool_ids_are_clean_errors(alice_client, tool_id: str) -> None:
    assert alice_client.get(f"/tools/{tool_id}").status_code == 404
    assert alice_client.post(f"/tools/{tool_id}", {}, format="json").status_code == 404
    assert alice_client.delete(f"/tools/{tool_id}").status_code == 404
    assert alice_client.put(f"/tools/{tool_id}", WEATHER, format="json").status_code == 400
