"""The MCP door driven by the official SDK's own client (`mcp.client.streamable_http`) over a real
socket against the real server: tools (list, call, a refused one, a long job), resources (list,
read, templates), memory_search / memory_write, an agent, the 401 with its RFC 9728 metadata
document, a foreign Origin, and another team seeing none of it — on the 2026-07-28 revision the
client negotiates by default and on the handshake era (`mode="legacy"`) too."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import mcp_types as types
import pytest
from django.test import override_settings
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import _streamable_http_modern
from mcp.shared.exceptions import MCPError

from apps.agents.services import agent_create
from apps.chat.models import Chat
from apps.facades.mcp import server as mcp_server
from apps.facades.mcp.door import McpDoor, allowed_origin
from apps.memory.models import MemoryItem
from apps.memory.services import memory_item_store
from apps.resources.services import resource_create
from apps.tenants.authentication import authenticate_key, principal_of
from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create, tenant_public_scopes_set
from apps.tools.models import ToolJob
from apps.tools.services import tool_put
from tests.e2e.conftest import LiveServer
from tests.tools.webhook_server import WebhookServer, start_webhook_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SECRET = "whsec_mcp-test-secret-0123456789"


def _team(slug: str, scopes: str = "*") -> tuple[Tenant, str]:
    tenant = Tenant.objects.create(slug=slug, name=slug.title())
    return tenant, api_key_create(tenant=tenant, scopes=scopes).plaintext


@asynccontextmanager
async def _client(
    server: LiveServer,
    key: str | None,
    *,
    mode: str = "auto",
    headers: dict[str, str] | None = None,
    path: str = "/mcp",
) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(
        headers={**({"Authorization": f"Bearer {key}"} if key is not None else {}), **(headers or {})},
        timeout=httpx2.Timeout(60.0, read=120.0),
    )
    async with (
        http,
        Client(streamable_http_client(f"{server.url}{path}", http_client=http), mode=mode) as client,
    ):
        yield client


def _run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(main())


def _names(tools: types.ListToolsResult) -> set[str]:
    return {tool.name for tool in tools.tools}


@pytest.fixture
def webhook() -> Any:
    server = start_webhook_server(SECRET)
    yield server
    server.close()


def _webhook_tool(tenant: Tenant, key: str, tool_id: str, server: WebhookServer, **fields: Any) -> None:
    principal = principal_of(authenticate_key(key), None)
    tool_put(
        principal=principal,
        tool_id=tool_id,
        data={
            "url": f"{server.url}{fields.pop('path', '/echo')}",
            "description": f"The {tool_id} tool",
            "schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            "signing_secret": SECRET,
            **fields,
        },
    )


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_tools_list_and_call_with_structured_results(slop_server: LiveServer, mode: str) -> None:
    _, key = _team(f"mcp-tools-{mode}")

    async def main() -> None:
        async with _client(slop_server, key, mode=mode) as client:
            if mode == "auto":
                assert client.protocol_version == "2026-07-28"
            else:
                assert client.protocol_version == "2025-11-25"
            tools = await client.list_tools()
            by_name = {tool.name: tool for tool in tools.tools}
            assert {"calculator", "current_time", "memory_search", "memory_write"} <= set(by_name)
            schema = by_name["calculator"].input_schema
            assert schema["type"] == "object" and "expression" in schema["properties"]
            result = await client.call_tool("calculator", {"expression": "15 * 7"})
            assert not result.is_error
            assert result.structured_content == {"result": 105}
            assert isinstance(result.content[0], types.TextContent) and result.content[0].text == "105"
            # Bad arguments: the tool's schema refuses them, as a tool error (not a protocol error).
            bad = await client.call_tool("calculator", {"expression": 7})
            assert bad.is_error and bad.structured_content["code"] == "validation_error"

    _run(main)


def test_a_refused_tool_names_its_scope_and_is_not_listed(slop_server: LiveServer) -> None:
    tenant, _ = _team("mcp-narrow")
    narrow = api_key_create(tenant=tenant, scopes="tools.current_time.execute").plaintext
    _, broad = _team("mcp-header")

    async def main() -> None:
        async with _client(slop_server, narrow) as client:
            assert _names(await client.list_tools()) == {"current_time"}
            refused = await client.call_tool("calculator", {"expression": "1 + 1"})
            assert refused.is_error
            assert refused.structured_content["required_scope"] == "tools.calculator.execute"
            text = refused.content[0]
            assert (
                isinstance(text, types.TextContent)
                and "required_scope: tools.calculator.execute" in text.text
            )
            # Memory tools are bound by the memory scopes: refused with the scope, never an empty answer.
            memory = await client.call_tool("memory_search", {"query": "anything"})
            assert memory.is_error and memory.structured_content["required_scope"] == "memory.read"
            write = await client.call_tool("memory_write", {"key": "notes/a", "value": 1})
            assert write.is_error and write.structured_content["required_scope"] == "memory.notes/a.write"
        # X-SLOP-Scope narrows a broad key the same way.
        async with _client(
            slop_server, broad, headers={"X-SLOP-Scope": "tools.calculator.execute"}
        ) as client:
            assert _names(await client.list_tools()) == {"calculator"}
            refused = await client.call_tool("current_time", {})
            assert (
                refused.is_error
                and refused.structured_content["required_scope"] == "tools.current_time.execute"
            )

    _run(main)


def test_a_long_running_tool_runs_as_a_job_with_progress(
    slop_server: LiveServer, webhook: WebhookServer
) -> None:
    tenant, key = _team("mcp-jobs")
    _webhook_tool(tenant, key, "slow_lookup", webhook, path="/slow", long_running=True, timeout_seconds=30)
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async def main() -> None:
        async with _client(slop_server, key) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert "runs as a job" in (tools["slow_lookup"].description or "")
            result = await client.call_tool("slow_lookup", {"city": "Paris"}, progress_callback=on_progress)
            assert not result.is_error, result
            assert result.structured_content["result"] == "late"
            assert result.structured_content["job_id"].startswith("job_")

    _run(main)
    job = ToolJob.objects.for_tenant(tenant).get()
    assert job.status == ToolJob.Status.SUCCEEDED and job.tool_slug == "slow_lookup"
    assert progress and progress[-1][1] == f"job {job.public_id} succeeded"
    assert webhook.received and webhook.received[0].signature_valid


def test_resources_list_read_and_templates(slop_server: LiveServer) -> None:
    tenant, key = _team("mcp-resources")
    resource_create(tenant=tenant, resource_id="notes/hello", title="Hello", content="Hello, world")
    resource_create(tenant=tenant, resource_id="secret/plan", title="Plan", content="Top secret")
    narrow = api_key_create(tenant=tenant, scopes="resources.notes.read").plaintext

    async def main() -> None:
        async with _client(slop_server, key) as client:
            listed = await client.list_resources()
            uris = {str(resource.uri) for resource in listed.resources}
            assert uris == {"slop://resources/notes/hello", "slop://resources/secret/plan"}
            read = await client.read_resource("slop://resources/notes/hello")
            content = read.contents[0]
            assert isinstance(content, types.TextResourceContents) and content.text == "Hello, world"
            templates = await client.list_resource_templates()
            assert {t.uri_template for t in templates.resource_templates} == {
                "slop://resources/{+id}",
                "slop://memory/{+key}",
            }
            with pytest.raises(MCPError) as missing:
                await client.read_resource("slop://resources/notes/nope")
            assert missing.value.data["code"] == "not_found"
        async with _client(slop_server, narrow) as client:
            listed = await client.list_resources()
            assert [str(r.uri) for r in listed.resources] == ["slop://resources/notes/hello"]
            with pytest.raises(MCPError) as refused:
                await client.read_resource("slop://resources/secret/plan")
            assert refused.value.data["required_scope"] == "resources.secret/plan.read"
            templates = await client.list_resource_templates()
            assert [t.uri_template for t in templates.resource_templates] == ["slop://resources/{+id}"]

    _run(main)


def test_memory_write_then_search_and_read(slop_server: LiveServer) -> None:
    tenant, key = _team("mcp-memory")

    async def main() -> None:
        async with _client(slop_server, key) as client:
            stored = await client.call_tool(
                "memory_write", {"key": "prefs/theme", "value": "The user prefers a dark theme at night"}
            )
            assert not stored.is_error and stored.structured_content == {
                "status": "stored",
                "key": "prefs/theme",
            }
            found = await client.call_tool(
                "memory_search", {"query": "which colour theme does the user like?"}
            )
            assert not found.is_error
            results = found.structured_content["results"]
            assert results[0]["key"] == "prefs/theme" and 0 <= results[0]["score"] <= 1
            read = await client.read_resource("slop://memory/prefs/theme")
            assert read.contents[0].text == "The user prefers a dark theme at night"  # type: ignore[union-attr]
            unknown = await client.call_tool("memory_write", {"key": "a", "value": 1, "ttl": 5})
            assert unknown.is_error and "ttl" in unknown.structured_content["details"]

    _run(main)
    assert MemoryItem.objects.for_tenant(tenant).get(key="prefs/theme").value.startswith("The user")


def test_an_agent_as_a_tool_runs_like_chat(slop_server: LiveServer) -> None:
    tenant, key = _team("mcp-agents")
    agent_create(
        tenant=tenant, agent_id="support", fields={"name": "Support", "description": "Product questions"}
    )
    no_agents = api_key_create(tenant=tenant, scopes="chat.*,tools.*").plaintext

    async def main() -> None:
        async with _client(slop_server, key) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert "ask_support" in tools and "Product questions" in (tools["ask_support"].description or "")
            reply = await client.call_tool("ask_support", {"message": "my order is late"})
            assert not reply.is_error, reply
            assert reply.structured_content["message"]["content"] == "my order is late"
            assert reply.structured_content["id"].startswith("chat_")
            assert reply.structured_content["usage"]["output_tokens"] > 0
        async with _client(slop_server, no_agents) as client:
            assert "ask_support" not in _names(await client.list_tools())
            refused = await client.call_tool("ask_support", {"message": "hi"})
            assert (
                refused.is_error and refused.structured_content["required_scope"] == "agents.support.execute"
            )

    _run(main)
    assert Chat.objects.for_tenant(tenant).count() == 1  # stored as a chat of the team, like POST /chat


def test_another_team_sees_nothing_of_the_first(slop_server: LiveServer, webhook: WebhookServer) -> None:
    alice, alice_key = _team("mcp-alice")
    _, bob_key = _team("mcp-bob")
    _webhook_tool(alice, alice_key, "alice_tool", webhook)
    agent_create(tenant=alice, agent_id="alice-agent", fields={"description": "Alice's"})
    resource_create(tenant=alice, resource_id="alice/doc", title="Doc", content="Alice only")
    memory_item_store(tenant=alice, key="alice/secret", value="the vault code is 1234")

    async def main() -> None:
        async with _client(slop_server, bob_key) as client:
            names = _names(await client.list_tools())
            assert "alice_tool" not in names and "ask_alice-agent" not in names
            assert (await client.list_resources()).resources == []
            with pytest.raises(MCPError) as missing:
                await client.read_resource("slop://resources/alice/doc")
            assert missing.value.data["code"] == "not_found"
            with pytest.raises(MCPError):
                await client.read_resource("slop://memory/alice/secret")
            for name in ("alice_tool", "ask_alice-agent"):
                called = await client.call_tool(
                    name, {"city": "Paris"} if name == "alice_tool" else {"message": "hi"}
                )
                assert called.is_error and called.structured_content["code"] == "not_found", called
            found = await client.call_tool("memory_search", {"query": "vault code"})
            assert not found.is_error and found.structured_content["results"] == []

    _run(main)
    assert not webhook.received


def test_no_key_is_a_401_naming_the_metadata_document(slop_server: LiveServer) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    anonymous = httpx.post(f"{slop_server.url}/mcp", json=initialize, headers=headers)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthenticated"
    expected = f'Bearer resource_metadata="{slop_server.url}/.well-known/oauth-protected-resource/mcp"'
    assert anonymous.headers["WWW-Authenticate"] == expected
    assert anonymous.headers["X-Request-ID"].startswith("req_")
    bad = httpx.post(
        f"{slop_server.url}/mcp", json=initialize, headers={**headers, "Authorization": "Bearer slop_nope"}
    )
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        document = httpx.get(f"{slop_server.url}{path}")
        assert document.status_code == 200
        body = document.json()
        assert body["resource"] == f"{slop_server.url}/mcp"
        assert body["authorization_servers"] == [] and body["bearer_methods_supported"] == ["header"]
        assert "console" in body["slop_authentication"]

    # The SDK's client sees the refusal too.
    async def main() -> None:
        with pytest.raises(Exception):  # noqa: B017 - the SDK raises its transport's error
            async with _client(slop_server, "slop_not_a_key"):
                pass

    _run(main)


def test_a_foreign_browser_origin_is_refused(slop_server: LiveServer) -> None:
    _, key = _team("mcp-origin")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {key}",
        "MCP-Protocol-Version": "2026-07-28",
    }
    foreign = httpx.post(
        f"{slop_server.url}/mcp", json=body, headers={**headers, "Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403 and foreign.json()["code"] == "forbidden_origin"

    # Without Origin (an MCP host), and from the server's own origin, the same request is served.
    async def main() -> None:
        for extra in ({}, {"Origin": slop_server.url}):
            async with _client(slop_server, key, headers=extra) as client:
                assert "calculator" in _names(await client.list_tools())

    _run(main)


def test_configured_origins_pass() -> None:
    with override_settings(SLOP_MCP_ALLOWED_ORIGINS=["https://app.example.com"]):
        assert allowed_origin("https://app.example.com", "api.example.com")
        assert allowed_origin(None, "api.example.com")
        assert allowed_origin("https://api.example.com", "api.example.com")
        assert not allowed_origin("https://evil.example", "api.example.com")
        assert not allowed_origin("null", "api.example.com")


def test_info_lists_the_door(slop_server: LiveServer) -> None:
    capabilities = httpx.get(f"{slop_server.url}/info").json()["capabilities"]
    assert {"mcp", "openai"} <= set(capabilities["doors"])
    assert capabilities["mcp"]["url"] == "/mcp" and "2026-07-28" in capabilities["mcp"]["protocol_versions"]
    assert json.dumps(capabilities["mcp"])  # plain JSON


def _door_request(method: str, headers: dict[str, str], content: bytes | None = None) -> httpx.Response:
    """One request to the door in this process (what granian hands it), for what needs settings."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=McpDoor(), client=("10.1.2.3", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.example.com") as client:
            if content is not None:
                return await client.request(method, "/mcp", headers=headers, content=content)
            body = None if method == "OPTIONS" else {}
            return await client.request(method, "/mcp", headers=headers, json=body)

    return asyncio.run(send())


def test_a_configured_browser_origin_gets_cors_answers() -> None:
    origin = {"Origin": "https://app.example.com"}
    with override_settings(SLOP_MCP_ALLOWED_ORIGINS=["https://app.example.com"]):
        preflight = _door_request(
            "OPTIONS", {**origin, "Access-Control-Request-Headers": "authorization, mcp-protocol-version"}
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "mcp-protocol-version" in preflight.headers["access-control-allow-headers"]
        refused = _door_request("POST", origin)  # no key: the page can read why (WWW-Authenticate)
        assert (
            refused.status_code == 401 and refused.headers["access-control-allow-origin"] == origin["Origin"]
        )
        assert "www-authenticate" in refused.headers["access-control-expose-headers"]
    foreign = _door_request("OPTIONS", {"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and "access-control-allow-origin" not in foreign.headers


def test_the_apis_rate_limit_per_key_holds_at_the_door() -> None:
    tenant, key = _team("mcp-limited")
    tenant.rate_limit_per_minute = 2
    tenant.save(update_fields=["rate_limit_per_minute"])
    with override_settings(RATE_LIMIT_PER_MINUTE=2):
        answers = [_door_request("POST", {"Authorization": f"Bearer {key}"}) for _ in range(3)]
    assert [a.status_code == 429 for a in answers] == [False, False, True]
    limited = answers[2]
    assert limited.json()["code"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["retry_after"] >= 1


def test_a_body_too_large_or_not_json_rpc_is_refused_not_a_500() -> None:
    _, key = _team("mcp-bodies")
    headers = {
        "Authorization": f"Bearer {key}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2026-07-28",
    }
    huge = (
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"x": "' + b"x" * (5 << 20) + b'"}}'
    )
    assert _door_request("POST", headers, huge).status_code == 413
    garbled = _door_request("POST", headers, b"{not json")
    assert garbled.status_code == 400 and garbled.json()["error"]["code"] == -32700


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18"])
def test_older_handshake_clients_are_answered_in_their_revision(
    slop_server: LiveServer, version: str
) -> None:
    _, key = _team(f"mcp-old-{version}")
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "old", "version": "1"},
        },
    }
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"}
    answer = httpx.post(f"{slop_server.url}/mcp", json=initialize, headers=headers)
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert result["protocolVersion"] == version and "tools" in result["capabilities"]
    listed = httpx.post(
        f"{slop_server.url}/mcp",
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        headers={**headers, "MCP-Protocol-Version": version},
    )
    assert listed.status_code == 200 and "calculator" in {t["name"] for t in listed.json()["result"]["tools"]}


MODERN_META = {  # what a 2026-07-28 request carries in params._meta
    types.PROTOCOL_VERSION_META_KEY: "2026-07-28",
    types.CLIENT_INFO_META_KEY: {"name": "raw", "version": "1"},
    types.CLIENT_CAPABILITIES_META_KEY: {},
}


def _modern_call(server: LiveServer, key: str, name: str, arguments: dict[str, Any], **headers: str) -> Any:
    """A raw 2026-07-28 tools/call (what the SDK's client sends, with headers of our choosing)."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": name,
            "arguments": arguments,
            "_meta": MODERN_META,
        },
    }
    return httpx.post(
        f"{server.url}/mcp",
        json=body,
        headers={
            "Authorization": f"Bearer {key}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2026-07-28",
            "Mcp-Method": "tools/call",
            "Mcp-Name": name,
            **headers,
        },
    )


def test_a_tools_mcp_param_header_is_checked_against_the_schema_its_caller_is_offered(
    slop_server: LiveServer, webhook: WebhookServer
) -> None:
    tenant, key = _team("mcp-param")
    routed = {
        "type": "object",
        "properties": {"city": {"type": "string", "x-mcp-header": "City"}},
        "required": ["city"],
    }
    _webhook_tool(tenant, key, "routed", webhook, schema=routed)

    async def main() -> None:  # the SDK's client mirrors the argument into Mcp-Param-City itself
        async with _client(slop_server, key) as client:
            result = await client.call_tool("routed", {"city": "Paris"})
            assert not result.is_error, result

    _run(main)
    served = _modern_call(slop_server, key, "routed", {"city": "Paris"}, **{"Mcp-Param-City": "Paris"})
    assert served.status_code == 200 and not served.json()["result"].get("isError"), served.text
    mismatch = _modern_call(slop_server, key, "routed", {"city": "Paris"}, **{"Mcp-Param-City": "Rome"})
    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == types.HEADER_MISMATCH
    missing = _modern_call(slop_server, key, "routed", {"city": "Paris"})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == types.HEADER_MISMATCH
    # A key that is not offered the tool has no schema to check: its call is refused as a tool error.
    narrow = api_key_create(tenant=tenant, scopes="tools.calculator.execute").plaintext
    refused = _modern_call(slop_server, narrow, "routed", {"city": "Paris"}, **{"Mcp-Param-City": "Rome"})
    assert refused.status_code == 200 and refused.json()["result"]["isError"]
    assert refused.json()["result"]["structuredContent"]["code"] == "scope_violation"
    assert len(webhook.received) == 2  # the two calls that matched, never a refused one


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_a_tenants_public_surface_serves_key_less_mcp_clients_with_its_public_scopes(
    slop_server: LiveServer, mode: str
) -> None:
    tenant, key = _team(f"mcp-public-{mode}")
    tenant_public_scopes_set(tenant=tenant, scopes="tools.safe.*,memory.notes/*.read")
    memory_item_store(tenant=tenant, key="notes/hello", value="hi")
    memory_item_store(tenant=tenant, key="secret/plan", value="hidden")
    path = f"/t/{tenant.slug}/mcp"

    async def main() -> None:
        async with _client(slop_server, None, mode=mode, path=path) as client:
            names = _names(await client.list_tools())
            assert {"calculator", "current_time", "memory_search"} <= names
            assert "memory_write" not in names  # no memory write scope is public
            result = await client.call_tool("calculator", {"expression": "6 * 7"})
            assert not result.is_error and result.structured_content == {"result": 42}
            read = await client.read_resource("slop://memory/notes/hello")
            assert read.contents[0].text == "hi"
            with pytest.raises(MCPError):
                await client.read_resource("slop://memory/secret/plan")
            refused = await client.call_tool("memory_write", {"key": "notes/x", "value": 1})
            assert refused.is_error and "required_scope" in refused.content[0].text
        # X-SLOP-Scope narrows the public scopes, as for a key.
        narrowed = {"X-SLOP-Scope": "tools.safe.*"}
        async with _client(slop_server, None, mode=mode, path=path, headers=narrowed) as client:
            assert "memory_search" not in _names(await client.list_tools())
        # The team's own key under its surface acts with the key's scopes.
        async with _client(slop_server, key, mode=mode, path=path) as client:
            assert "memory_write" in _names(await client.list_tools())

    _run(main)
    assert not MemoryItem.objects.for_tenant(tenant).filter(key="notes/x").exists()


def test_the_public_door_refuses_what_the_public_surface_refuses(slop_server: LiveServer) -> None:
    closed, _ = _team("mcp-closed")  # no public scopes: no public surface
    _, other_key = _team("mcp-other")
    tenant_public_scopes_set(tenant=_team("mcp-open")[0], scopes="tools.safe.*")
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    for slug in (closed.slug, "no-such-team"):
        answer = httpx.post(f"{slop_server.url}/t/{slug}/mcp", json=listing, headers=headers)
        assert answer.status_code == 401 and answer.json()["code"] == "unauthenticated"
        assert "No public surface" in answer.json()["error"]
        metadata = f"{slop_server.url}/.well-known/oauth-protected-resource/t/{slug}/mcp"
        assert answer.headers["WWW-Authenticate"] == f'Bearer resource_metadata="{metadata}"'
    # Another team's key under this team's surface: the URL and the key name two teams.
    foreign = httpx.post(
        f"{slop_server.url}/t/mcp-open/mcp",
        json=listing,
        headers={**headers, "Authorization": f"Bearer {other_key}"},
    )
    assert foreign.status_code == 401 and foreign.json()["code"] == "unauthenticated"
    document = httpx.get(f"{slop_server.url}/.well-known/oauth-protected-resource/t/mcp-open/mcp")
    assert document.status_code == 200
    assert document.json()["resource"] == f"{slop_server.url}/t/mcp-open/mcp"
    assert httpx.get(f"{slop_server.url}/t/mcp-open/.well-known/oauth-protected-resource").status_code == 404


def test_the_public_doors_rate_limit_is_per_client_address() -> None:
    tenant, _ = _team("mcp-public-limited")
    tenant_public_scopes_set(tenant=tenant, scopes="tools.safe.*")

    async def send() -> list[int]:
        transport = httpx.ASGITransport(app=McpDoor(), client=("10.1.2.3", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.example.com") as client:
            return [(await client.post("/t/mcp-public-limited/mcp", json={})).status_code for _ in range(3)]

    with override_settings(ANON_RATE_LIMIT_PER_MINUTE=2):
        statuses = asyncio.run(send())
    assert [status == 429 for status in statuses] == [False, False, True]


def test_a_tool_named_ask_x_wins_over_the_agent_x_for_every_key(
    slop_server: LiveServer, webhook: WebhookServer
) -> None:
    tenant, key = _team("mcp-ask-clash")
    agent_create(tenant=tenant, agent_id="helper", fields={"name": "Helper", "description": "An agent"})
    _webhook_tool(tenant, key, "ask_helper", webhook)
    # May run the agent but not the tool: the name is still the tool's, so neither is listed.
    agents_only = api_key_create(tenant=tenant, scopes="chat.*,agents.*").plaintext

    async def main() -> None:
        async with _client(slop_server, key) as client:
            tools = [tool for tool in (await client.list_tools()).tools if tool.name == "ask_helper"]
            assert [tool.description for tool in tools] == ["The ask_helper tool"]
            result = await client.call_tool("ask_helper", {"city": "Paris"})
            assert not result.is_error, result
        async with _client(slop_server, agents_only) as client:
            assert "ask_helper" not in _names(await client.list_tools())
            refused = await client.call_tool("ask_helper", {"message": "hi"})
            assert refused.is_error
            assert refused.structured_content["required_scope"] == "tools.ask_helper.execute"

    _run(main)
    assert len(webhook.received) == 1  # the tool ran once; the agent never
    assert not Chat.objects.for_tenant(tenant).exists()


def test_key_less_loopback_requests_act_on_the_demo_surface_under_make_run() -> None:
    tenant, _ = _team("mcp-demo")
    tenant_public_scopes_set(tenant=tenant, scopes="tools.safe.*")
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": MODERN_META}}
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/list",
    }

    async def send(peer: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=McpDoor(), client=(peer, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
            return await client.post("/mcp", headers=headers, json=listing)

    with override_settings(SLOP_DEMO_PUBLIC_LOOPBACK=True, SLOP_DEMO_TENANT_SLUG="mcp-demo"):
        served = asyncio.run(send("127.0.0.1"))
        assert served.status_code == 200, served.text
        assert "calculator" in {tool["name"] for tool in served.json()["result"]["tools"]}
        assert asyncio.run(send("10.1.2.3")).status_code == 401  # not loopback: a key is needed
    assert asyncio.run(send("127.0.0.1")).status_code == 401  # the setting is off outside make run


def test_a_call_that_may_run_long_is_kept_alive_without_asking_for_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant, key = _team("mcp-keepalive")
    agent_create(tenant=tenant, agent_id="support", fields={"name": "Support"})
    # The SDK turns a 2026-07-28 answer into an event stream with keep-alive comments once the call
    # has run this long without answering (15 s); a hundredth of a second here, so an agent's run
    # counts as long.
    monkeypatch.setattr(_streamable_http_modern, "_SSE_PING_INTERVAL", 0.01)
    # The echo model answers within that hundredth on a quiet machine; the run is held a fifth of a
    # second so it is long whatever the machine's speed.
    ask_agent = mcp_server._ask_agent

    async def slow_ask_agent(*args: Any) -> dict[str, Any]:
        await asyncio.sleep(0.2)
        return await ask_agent(*args)

    monkeypatch.setattr(mcp_server, "_ask_agent", slow_ask_agent)
    headers = {
        "Authorization": f"Bearer {key}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
    }

    def call(name: str, arguments: dict[str, Any]) -> httpx.Response:
        params = {"name": name, "arguments": arguments, "_meta": MODERN_META}
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
        return _door_request("POST", {**headers, "Mcp-Name": name}, json.dumps(body).encode())

    asked = call("ask_support", {"message": "my order is late"})
    assert asked.status_code == 200 and asked.headers["content-type"].startswith("text/event-stream")
    assert ": ping" in asked.text
    result = json.loads(asked.text.rsplit("data: ", 1)[1])["result"]
    assert result["structuredContent"]["message"]["content"] == "my order is late"
    # A call that cannot run long (a built-in tool) stays plain JSON.
    quick = call("calculator", {"expression": "15 * 7"})
    assert quick.headers["content-type"] == "application/json"
    assert quick.json()["result"]["structuredContent"] == {"result": 105}
