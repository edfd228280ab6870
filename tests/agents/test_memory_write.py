"""memory_write, the built-in that lets agents share findings: it writes within the caller's memory
write scopes exactly as POST /memory does, through the API and through a chat's tool calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apps.memory.models import MemoryItem

pytestmark = pytest.mark.django_db

NOTE = {"key": "research/solar", "value": "Solar panels in Norway pay back in about 11 years."}


def write(client: Any, body: dict[str, Any] = NOTE) -> Any:
    return client.post("/tools/memory_write", body, format="json")


def test_it_stores_and_memory_search_finds_it_by_meaning(alice_client, alice) -> None:
    response = write(alice_client)
    assert response.status_code == 200
    assert response.json() == {"result": {"status": "stored", "key": "research/solar"}}
    assert alice_client.get("/memory/research/solar").json()["value"] == NOTE["value"]
    found = alice_client.post("/tools/memory_search", {"query": "photovoltaic payback time"}, format="json")
    assert found.json()["result"][0]["key"] == "research/solar"
    # It overwrites, like POST /memory, and takes any JSON value.
    assert write(alice_client, {"key": "research/solar", "value": {"years": 11}}).status_code == 200
    assert MemoryItem.objects.for_tenant(alice).get(key="research/solar").value == {"years": 11}


def test_it_writes_only_where_the_caller_may_write(client_for, alice) -> None:
    narrow = client_for(alice, "tools.memory_write.execute,memory.research/.write")
    assert write(narrow).status_code == 200
    refused = write(narrow, {"key": "private/salary", "value": "secret"})
    assert refused.status_code == 403
    assert refused.json()["required_scope"] == "memory.private/salary.write"
    assert refused.json()["code"] == "scope_violation" and refused.json()["permitted"] is False
    # Reading memory is not writing it; the header narrows the key.
    reader = client_for(alice, "tools.*,memory.*", scope_header="tools.*,memory.read")
    assert write(reader, {"key": "research/wind", "value": "x"}).status_code == 403
    assert sorted(MemoryItem.objects.for_tenant(alice).values_list("key", flat=True)) == ["research/solar"]


def test_it_is_not_a_safe_tool(client_for, alice, alice_client) -> None:
    listed = {tool["id"]: tool for tool in alice_client.get("/tools").json()["tools"]}
    assert listed["memory_write"]["safe"] is False
    assert set(listed["memory_write"]["parameters"]) == {"key", "value"}
    detail = alice_client.get("/tools/memory_write").json()
    assert detail["schema"]["required"] == ["key", "value"] and detail["kind"] == "builtin"
    safe_only = client_for(alice, "tools.list,tools.safe.*,memory.*")
    refused = write(safe_only)
    assert refused.status_code == 403 and refused.json()["required_scope"] == "tools.memory_write.execute"
    assert "memory_write" not in [tool["id"] for tool in safe_only.get("/tools").json()["tools"]]


def test_it_never_crosses_tenants(alice_client, alice, charlie_client, charlie) -> None:
    write(alice_client)
    assert write(charlie_client, {"key": "research/solar", "value": "Charlie's"}).status_code == 200
    assert MemoryItem.objects.for_tenant(alice).get(key="research/solar").value == NOTE["value"]
    assert MemoryItem.objects.for_tenant(charlie).get(key="research/solar").value == "Charlie's"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": "x"}, "key"),
        ({"key": "k"}, "value"),
        ({"key": "k", "value": None}, "value"),
        ({"key": "", "value": "x"}, "key"),
        ({"key": "a" * 513, "value": "x"}, "key"),
        ({"key": "a\u0001b", "value": "x"}, "key"),
    ],
)
def test_bad_input_is_a_400_and_stores_nothing(alice_client, alice, body, field) -> None:
    response = write(alice_client, body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["details"]
    assert not MemoryItem.objects.for_tenant(alice).exists()


def test_it_runs_only_synchronously(alice_client) -> None:
    queued = alice_client.post("/tools/memory_write?async=true", NOTE, format="json")
    assert queued.status_code == 400 and "synchronously" in queued.json()["error"]


def test_a_chat_model_writes_memory_through_it_within_the_scope(client_for, alice) -> None:
    call = f"/tool memory_write {json.dumps(NOTE)}"
    allowed = client_for(alice, "chat.write,tools.memory_write.execute,memory.research/.write")
    body = allowed.post("/chat", {"messages": [{"content": call}]}, format="json").json()
    assert body["tool_calls"][0]["result"] == {"status": "stored", "key": "research/solar"}
    assert MemoryItem.objects.for_tenant(alice).get(key="research/solar").value == NOTE["value"]
    other = {"key": "private/x", "value": "no"}
    body = allowed.post(
        "/chat", {"messages": [{"content": f"/tool memory_write {json.dumps(other)}"}]}, format="json"
    ).json()
    assert body["tool_calls"][0]["error"]["required_scope"] == "memory.private/x.write"
    assert not MemoryItem.objects.for_tenant(alice).filter(key="private/x").exists()
