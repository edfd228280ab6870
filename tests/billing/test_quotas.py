"""Quotas that hold: past the plan's included amount (overage off), a key's own cap or the team's cap
per end user, the next billable request is a 402 quota_exceeded before any upstream call, on every
door; other tenants and other keys and users go on."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.db import connection

from apps.billing.accounts import account_for, clear_limits_cache
from apps.billing.metering import Kind, Usage, meter
from apps.billing.models import UsageCounter, UsageEvent
from apps.llm.models import ModelConfig
from apps.llm.secrets import encrypt_secret
from apps.tenants.models import ApiKey, Tenant
from slop_platform.asgi import application
from tests.conftest import SlopClient

pytestmark = pytest.mark.django_db


def say(client: Any, text: str, **extra: Any) -> Any:
    headers = {name: value for name, value in extra.items() if name.startswith("HTTP_")}
    body = {"messages": [{"role": "user", "content": text}]}
    body.update({name: value for name, value in extra.items() if name not in headers})
    return client.post("/chat", body, format="json", **headers)


def used_tokens(tenant: Tenant, scope: str = "tenant", subject: str = "") -> int:
    row = UsageCounter.objects.for_tenant(tenant).filter(scope=scope, subject=subject).first()
    return row.tokens if row else 0


def use_up(tenant: Tenant, tokens: int, **who: Any) -> None:
    """Usage already metered this period (as if earlier requests had used it)."""
    meter(usage=Usage(tenant_id=int(tenant.pk), **who), kind=Kind.LLM, model="echo", input_tokens=tokens)


def fake_gpt(tenant: Tenant, upstream: Any) -> None:
    ModelConfig.objects.create(
        tenant=tenant,
        name="fake-gpt",
        provider="openai",
        base_url=upstream.url,
        api_key_encrypted=encrypt_secret(upstream.api_key),
        is_default=True,
    )


def test_at_its_limit_a_team_gets_402_before_any_model_call(
    alice: Tenant, alice_client: Any, put_on_plan: Callable[..., Any], openai_upstream: Any
) -> None:
    put_on_plan(alice, included_tokens=100)
    fake_gpt(alice, openai_upstream)
    assert say(alice_client, "hello").status_code == 200
    use_up(alice, 100)
    calls_before = len(openai_upstream.requests)

    refused = say(alice_client, "hello again")

    assert refused.status_code == 402
    body = refused.json()
    assert body["code"] == "quota_exceeded" and body["status"] == 402 and body["scope"] == "tenant"
    assert body["limit"] == 100 and body["used"] == used_tokens(alice) and body["used"] >= 100
    assert body["upgrade_url"] == "/billing"
    assert "100 LLM tokens" in body["error"]
    assert len(openai_upstream.requests) == calls_before  # the model was never asked
    # Every door refuses the same way: the stream endpoints answer the 402 before streaming.
    stream = alice_client.post("/chat/stream", {"messages": [{"content": "x"}]}, format="json")
    assert stream.status_code == 402 and stream.json()["code"] == "quota_exceeded"
    sse = alice_client.get("/chat/stream?content=x")
    assert sse.status_code == 402
    assert len(openai_upstream.requests) == calls_before
    assert UsageEvent.objects.for_tenant(alice).count() == 2  # the one exchange and the use_up


def test_overage_on_means_no_refusal(
    alice: Tenant, alice_client: Any, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_tokens=10, overage_allowed=True)
    use_up(alice, 50)
    assert say(alice_client, "hello").status_code == 200


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_websocket_refuses_with_the_same_error(
    alice: Tenant, make_key: Callable[..., str], put_on_plan: Callable[..., Any]
) -> None:
    await sync_to_async(put_on_plan)(alice, included_tokens=5)
    await sync_to_async(use_up)(alice, 5)
    key = await sync_to_async(make_key)(alice)
    communicator = WebsocketCommunicator(application, "/chat/ws", headers=[(b"x-api-key", key.encode())])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"messages": [{"content": "hi"}]})
    error = await communicator.receive_json_from(timeout=10)
    assert error["type"] == "error" and error["code"] == "quota_exceeded" and error["scope"] == "tenant"
    assert await communicator.receive_json_from(timeout=10) == {"status": "complete"}
    await communicator.disconnect()


def test_tool_calls_past_the_plan_are_refused_before_the_tool_runs(
    alice: Tenant, alice_client: Any, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_tool_calls=2)
    for _ in range(2):
        assert alice_client.post("/tools/calculator", {"expression": "6*7"}, format="json").status_code == 200
    refused = alice_client.post("/tools/calculator", {"expression": "6*7"}, format="json")
    assert refused.status_code == 402
    assert (
        refused.json()["scope"] == "tenant" and refused.json()["limit"] == 2 and refused.json()["used"] == 2
    )
    assert UsageEvent.objects.for_tenant(alice).filter(kind="tool").count() == 2
    # A model's tool call is refused the same way, as the tool's result; the chat itself goes on.
    reply = say(alice_client, '/tool calculator {"expression": "1+1"}').json()
    assert reply["tool_calls"][0]["error"]["code"] == "quota_exceeded"
    assert UsageEvent.objects.for_tenant(alice).filter(kind="tool").count() == 2
    # Bad input is still a 400, not a 402: validation comes first.
    assert alice_client.post("/tools/calculator", {"expr": 1}, format="json").status_code == 400


def test_a_keys_own_cap_holds_and_other_keys_go_on(
    alice: Tenant, make_key: Callable[..., str], put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_tokens=None)
    capped = SlopClient().with_key(make_key(alice, monthly_token_cap=50))
    other = SlopClient().with_key(make_key(alice))
    capped_id = ApiKey.objects.for_tenant(alice).get(monthly_token_cap=50).pk
    assert say(capped, "hello").status_code == 200
    use_up(alice, 50, api_key_id=capped_id)

    refused = say(capped, "hello")

    assert refused.status_code == 402
    assert refused.json()["scope"] == "key" and refused.json()["limit"] == 50
    assert "upgrade_url" not in refused.json()  # the team's own cap: nothing to buy
    assert say(other, "hello").status_code == 200


def test_a_refusal_by_one_limit_leaves_nothing_reserved_on_the_others(
    alice: Tenant, make_key: Callable[..., str], put_on_plan: Callable[..., Any]
) -> None:
    # Admission is one statement over the tenant's, the key's and the end user's counters: when the
    # key's cap refuses, the reservation the tenant's and the end user's counters took is given back.
    put_on_plan(alice, included_tokens=1_000_000)
    account = account_for(alice)
    account.end_user_monthly_token_cap = 1_000_000
    account.save(update_fields=["end_user_monthly_token_cap"])
    clear_limits_cache()
    capped = SlopClient().with_key(make_key(alice, monthly_token_cap=30))
    capped_id = ApiKey.objects.for_tenant(alice).get(monthly_token_cap=30).pk
    assert say(capped, "hello", HTTP_X_SLOP_USER="u1").status_code == 200
    use_up(alice, 30, api_key_id=capped_id, end_user="u1")

    refused = say(capped, "hello", HTTP_X_SLOP_USER="u1")

    assert refused.status_code == 402 and refused.json()["scope"] == "key"
    reserved = UsageCounter.objects.for_tenant(alice).values_list("scope", "reserved_tokens")
    assert dict(reserved) == {"tenant": 0, "key": 0, "user": 0}
    assert say(SlopClient().with_key(make_key(alice)), "hi", HTTP_X_SLOP_USER="u1").status_code == 200


def test_create_api_key_takes_a_monthly_token_cap(alice: Tenant) -> None:
    from io import StringIO

    out = StringIO()
    call_command("create_api_key", alice.slug, "--scopes", "chat.*", "--monthly-tokens", "1234", stdout=out)
    key = ApiKey.objects.for_tenant(alice).get()
    assert key.monthly_token_cap == 1234 and out.getvalue().startswith("slop_")


def test_an_end_user_cap_holds_per_user(
    alice: Tenant, alice_client: Any, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_tokens=None)
    account = account_for(alice)
    account.end_user_monthly_token_cap = 40
    account.save(update_fields=["end_user_monthly_token_cap"])
    clear_limits_cache()
    assert say(alice_client, "hi", HTTP_X_SLOP_USER="user-1").status_code == 200
    use_up(alice, 40, end_user="user-1")

    refused = say(alice_client, "hi", HTTP_X_SLOP_USER="user-1")

    assert refused.status_code == 402 and refused.json()["scope"] == "user" and refused.json()["limit"] == 40
    assert say(alice_client, "hi", HTTP_X_SLOP_USER="user-2").status_code == 200
    assert say(alice_client, "hi").status_code == 200  # no end user named: no per-user cap
    assert used_tokens(alice, "user", "user-2") > 0


def test_a_bad_end_user_header_is_a_400(alice_client: Any) -> None:
    refused = say(alice_client, "hi", HTTP_X_SLOP_USER="x" * 201)
    assert refused.status_code == 400 and "X-SLOP-User" in refused.json()["error"]


def test_other_tenants_are_unaffected(
    alice: Tenant, charlie: Tenant, alice_client: Any, charlie_client: Any, put_on_plan: Callable[..., Any]
) -> None:
    put_on_plan(alice, included_tokens=10, included_tool_calls=0)
    put_on_plan(charlie, included_tokens=10_000, included_tool_calls=5)
    use_up(alice, 10)
    assert say(alice_client, "hi").status_code == 402
    assert alice_client.post("/tools/calculator", {"expression": "1"}, format="json").status_code == 402
    assert say(charlie_client, "hi").status_code == 200
    assert charlie_client.post("/tools/calculator", {"expression": "1"}, format="json").status_code == 200


def test_a_failed_exchange_gives_its_reservation_back(
    alice: Tenant, alice_client: Any, put_on_plan: Callable[..., Any], openai_upstream: Any
) -> None:
    put_on_plan(alice, included_tokens=100_000)
    fake_gpt(alice, openai_upstream)
    assert say(alice_client, "fail500").status_code == 502
    counter = UsageCounter.objects.for_tenant(alice).get(scope="tenant")
    assert counter.reserved_tokens == 0 and counter.tokens == 0


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_requests_at_the_edge_overshoot_by_at_most_one(
    alice: Tenant, make_key: Callable[..., str], put_on_plan: Callable[..., Any]
) -> None:
    limit = 1000
    put_on_plan(alice, included_tokens=limit)
    use_up(alice, limit - 1)  # one token left
    key = make_key(alice)
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        client = SlopClient().with_key(key)
        barrier.wait()
        status = say(client, "one more request, please").status_code
        with lock:
            statuses.append(status)
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    elapsed = time.perf_counter() - started

    assert sorted(statuses) == [200] + [402] * 19, statuses
    exchange = UsageEvent.objects.for_tenant(alice).filter(model="echo").order_by("-id").first()
    assert exchange is not None
    one_request = exchange.input_tokens + exchange.output_tokens
    used = used_tokens(alice)
    assert used == limit - 1 + one_request  # past the limit by that one request, no more
    counter = UsageCounter.objects.for_tenant(alice).get(scope="tenant")
    assert counter.reserved_tokens == 0
    print(
        json.dumps(
            {
                "concurrent": 20,
                "admitted": statuses.count(200),
                "overshoot_tokens": used - limit,
                "one_request_tokens": one_request,
                "seconds": round(elapsed, 2),
            }
        )
    )
