"""The seed's memory examples with curl against the real server, and read-your-writes over HTTP."""

from __future__ import annotations

import asyncio
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from apps.tenants.models import Tenant
from apps.tenants.services import api_key_create
from tests.e2e.conftest import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def curl(
    server: LiveServer, key: str, method: str, path: str, body: object | None = None
) -> tuple[int, dict]:
    command = [
        "curl",
        "-s",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        f"{server.url}{path}",
        "-H",
        f"Authorization: Bearer {key}",
    ]
    if body is not None:
        command += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    text, _, status = output.rpartition("\n")
    return int(status), json.loads(text)


def test_seed_memory_examples_with_curl(slop_server: LiveServer) -> None:
    alice = Tenant.objects.create(slug="curl-alice", name="Alice")
    charlie = Tenant.objects.create(slug="curl-charlie", name="Charlie")
    key = api_key_create(tenant=alice, scopes="*").plaintext
    other = api_key_create(tenant=charlie, scopes="*").plaintext
    thread = {
        "title": "Project Planning",
        "participants": ["user_1", "user_2"],
        "tags": ["project", "planning", "roadmap"],
        "status": "active",
    }
    for path_key, value in [
        ("search_history", ["best pizza near me", "flight prices to Lisbon"]),
        ("shipping_address", {"street": "12 Harbour Road", "city": "Bristol"}),
        ("thread:thread_999", {"title": "Holiday rota", "participants": ["user_7"]}),
    ]:
        assert curl(slop_server, key, "POST", "/memory", {"key": path_key, "value": value})[0] == 200

    assert curl(
        slop_server,
        key,
        "POST",
        "/memory",
        {"key": "user_preference", "value": {"theme": "dark", "language": "en"}},
    ) == (200, {"status": "stored"})
    status, got = curl(slop_server, key, "GET", "/memory/user_preference")
    assert status == 200 and got["value"] == {"theme": "dark", "language": "en"}
    status, listed = curl(slop_server, key, "GET", "/memory")
    assert {entry["key"] for entry in listed["keys"]} >= {"user_preference", "search_history"}
    status, found = curl(
        slop_server, key, "POST", "/memory/query", {"query": "What theme settings do I have?", "limit": 1}
    )
    assert [result["key"] for result in found["results"]] == ["user_preference"]

    assert curl(slop_server, key, "POST", "/memory", {"key": "thread:thread_12345", "value": thread}) == (
        200,
        {"status": "stored"},
    )
    status, threads = curl(
        slop_server,
        key,
        "POST",
        "/memory/query",
        {"query": "project planning threads with user_1", "filter": {"key_prefix": "thread:"}},
    )
    assert [result["key"] for result in threads["results"]] == ["thread:thread_12345", "thread:thread_999"]
    assert threads["results"][0]["value"] == thread

    updated = {**thread, "participants": ["user_1", "user_2", "user_3"], "status": "in_progress"}
    status, body = curl(slop_server, key, "PUT", "/memory/thread:thread_12345", {"value": updated})
    assert (status, body) == (200, {"status": "updated", "previous_value": thread})
    status, body = curl(
        slop_server, key, "PUT", "/memory/user_preference", {"value": {"theme": "light", "language": "en"}}
    )
    assert body["previous_value"] == {"theme": "dark", "language": "en"}

    # charlie sees none of it
    assert curl(slop_server, other, "GET", "/memory/user_preference")[0] == 404
    assert curl(slop_server, other, "GET", "/memory")[1]["keys"] == []
    assert curl(slop_server, other, "POST", "/memory/query", {"query": "theme"})[1] == {"results": []}
    assert curl(slop_server, other, "DELETE", "/memory/user_preference")[0] == 404

    assert curl(slop_server, key, "DELETE", "/memory/user_preference") == (200, {"status": "deleted"})
    assert curl(slop_server, key, "GET", "/memory/user_preference")[0] == 404


def test_read_your_writes_under_concurrency(slop_server: LiveServer) -> None:
    tenant = Tenant.objects.create(slug="ryw", name="RYW")
    headers = {"Authorization": f"Bearer {api_key_create(tenant=tenant, scopes='*').plaintext}"}
    topics = [
        "sourdough baking",
        "marathon training",
        "tax returns",
        "guitar chords",
        "bird watching",
        "tomato gardening",
        "chess openings",
        "sailing knots",
    ]

    def write_then_find(topic: str) -> str | None:
        key = "note/" + topic.replace(" ", "_")
        with httpx.Client(base_url=slop_server.url, headers=headers, timeout=60) as client:
            stored = client.post("/memory", json={"key": key, "value": f"my notes on {topic}"})
            assert stored.status_code == 200, stored.text
            found = client.post(
                "/memory/query", json={"query": topic, "limit": 1, "filter": {"key_prefix": "note/"}}
            )
            results = found.json()["results"]
            return results[0]["key"] if results else None

    with ThreadPoolExecutor(max_workers=8) as pool:
        found_keys = list(pool.map(write_then_find, topics))
    # Each query ran after its own write returned: at the least, the item is there to be found.
    assert all(key is not None for key in found_keys)
    with httpx.Client(base_url=slop_server.url, headers=headers, timeout=60) as client:
        for topic in topics:
            results = client.post("/memory/query", json={"query": topic, "limit": 1}).json()["results"]
            assert results[0]["key"] == "note/" + topic.replace(" ", "_")


def answered_on_loop(server: LiveServer, route: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    wanted = f'slop_http_event_loop_requests_total{{outcome="answered",route="{route}"}}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(wanted))


def test_the_event_loop_answers_as_the_thread_path_does(slop_server: LiveServer) -> None:
    """GET /memory/:key and GET /info read on the event loop (its own asyncio connections: jsonb as
    Django reads it, timestamps in UTC) answer what Django's path answers to the same request."""
    tenant = Tenant.objects.create(slug="loop-alice", name="Alice")
    key = api_key_create(tenant=tenant, scopes="*").plaintext
    headers = {"Authorization": f"Bearer {key}", "X-Request-ID": "loop-1"}
    value = {"n": [1, 2.5, None, "é\u2028"], "theme": "dark", "big": 2**70}
    stored = httpx.post(f"{slop_server.url}/memory", json={"key": "k1", "value": value}, headers=headers)
    assert stored.status_code == 200, stored.text
    item_route = "memory/<path:key>"
    for path, route in [("/memory/k1", item_route), ("/memory/absent", item_route), ("/info", "info")]:
        httpx.get(f"{slop_server.url}{path}", headers=headers)  # the worker learns the key, on a thread
        httpx.get(f"{slop_server.url}{path}", headers=headers)
        before = answered_on_loop(slop_server, route)
        loop = httpx.get(f"{slop_server.url}{path}", headers=headers)
        assert answered_on_loop(slop_server, route) == before + 1
        django = httpx.get(f"{slop_server.url}{path}?format=json", headers=headers)  # (not a loop route's)
        assert answered_on_loop(slop_server, route) == before + 1
        kept = [(name, value) for name, value in loop.headers.items() if name != "date"]
        assert (loop.status_code, kept, loop.content) == (
            django.status_code,
            [(name, value) for name, value in django.headers.items() if name != "date"],
            django.content,
        )
    item = httpx.get(f"{slop_server.url}/memory/k1", headers=headers).json()
    assert item["value"] == value and item["created_at"].endswith("Z")


def gathered(server: LiveServer, call: str) -> tuple[float, float]:
    """slop_event_loop_gathered_calls for `call`: round trips, and those that carried one call."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    count, alone = 0.0, 0.0
    for line in text.splitlines():
        if line.startswith(f'slop_event_loop_gathered_calls_count{{call="{call}"}}'):
            count += float(line.split()[-1])
        elif line.startswith(f'slop_event_loop_gathered_calls_bucket{{call="{call}",le="1.0"}}'):
            alone += float(line.split()[-1])
    return count, alone


def test_concurrent_reads_of_two_tenants_share_round_trips_and_each_gets_its_own(
    slop_server: LiveServer,
) -> None:
    """Concurrent GET /memory/:key of two tenants, for the same key and for a key only one has, go
    to PostgreSQL (and the rate limit's Redis) several in a round trip: each answer is its own
    tenant's, and the other tenant's key is a 404 there too."""
    keys = {}
    for slug in ("gather-alice", "gather-charlie"):
        tenant = Tenant.objects.create(slug=slug, name=slug)
        keys[slug] = {"Authorization": f"Bearer {api_key_create(tenant=tenant, scopes='*').plaintext}"}
        for key in ("shared", f"only-{slug}"):
            stored = httpx.post(
                f"{slop_server.url}/memory", json={"key": key, "value": {"owner": slug}}, headers=keys[slug]
            )
            assert stored.status_code == 200, stored.text
    wanted = [(slug, key) for slug in keys for key in ("shared", "only-gather-alice", "only-gather-charlie")]
    for slug, key in wanted * 2:  # each worker learns the keys (on a thread)
        httpx.get(f"{slop_server.url}/memory/{key}", headers=keys[slug])

    async def read_all() -> list[tuple[str, str, httpx.Response]]:
        async with httpx.AsyncClient(base_url=slop_server.url, timeout=30) as client:
            asked = wanted * 12
            answers = await asyncio.gather(
                *(client.get(f"/memory/{key}", headers=keys[slug]) for slug, key in asked)
            )
        return [(slug, key, answer) for (slug, key), answer in zip(asked, answers, strict=True)]

    before = gathered(slop_server, "memory_item")
    for _ in range(5):
        for slug, key, answer in asyncio.run(read_all()):
            if key in ("shared", f"only-{slug}"):
                assert (answer.status_code, answer.json()["value"]) == (200, {"owner": slug})
            else:
                assert answer.status_code == 404, answer.text
                assert answer.json() == {
                    "error": f"Memory key not found: {key}",
                    "code": "not_found",
                    "status": 404,
                }
        count, alone = gathered(slop_server, "memory_item")
        if count - alone > before[0] - before[1]:
            break
    count, alone = gathered(slop_server, "memory_item")
    assert count > before[0]  # read on the event loop
    assert count - alone > before[0] - before[1]  # and some round trips carried several reads


def test_writes_on_the_event_loop_store_what_the_thread_path_stores(slop_server: LiveServer) -> None:
    """POST /memory of an existing key whose text the worker has embedded is written on the event
    loop (psycopg's asyncio connection: the JSON value, the vector as text): the item reads back
    as written, with the vector the thread path computed for the same text."""
    from apps.memory.models import MemoryItem

    tenant = Tenant.objects.create(slug="loop-writer", name="Writer")
    headers = {"Authorization": f"Bearer {api_key_create(tenant=tenant, scopes='*').plaintext}"}

    def post(key: str, value: object) -> None:
        answer = httpx.post(f"{slop_server.url}/memory", json={"key": key, "value": value}, headers=headers)
        assert (answer.status_code, answer.content) == (200, b'{"status":"stored"}')

    before = answered_on_loop(slop_server, "memory")
    values = [{"colour": "red", "n": [1, None]}, "blue ocean waves"]
    # Each worker embeds each text once (on a thread) and holds it; a new key is a thread's too.
    for value in values * 4:
        post("k", value)
        assert httpx.get(f"{slop_server.url}/memory/k", headers=headers).json()["value"] == value
    assert answered_on_loop(slop_server, "memory") >= before + 3
    other = Tenant.objects.create(slug="loop-writer-2", name="Other")
    fresh_headers = {"Authorization": f"Bearer {api_key_create(tenant=other, scopes='*').plaintext}"}
    answer = httpx.post(
        f"{slop_server.url}/memory", json={"key": "k", "value": values[-1]}, headers=fresh_headers
    )
    assert answer.status_code == 200  # a new key: embedded and stored on a thread
    item = MemoryItem.objects.for_tenant(tenant).get(key="k")
    fresh = MemoryItem.objects.for_tenant(other).get(key="k")
    assert (item.embedding_text, item.content_hash, item.embedding_model) == (
        fresh.embedding_text,
        fresh.content_hash,
        fresh.embedding_model,
    )
    assert max(abs(a - b) for a, b in zip(item.embedding, fresh.embedding, strict=True)) < 1e-5
