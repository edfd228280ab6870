"""POST /chat, GET /chat, GET /chat?type=threads, GET /chat/:id, GET /chat/thread_… (no streaming)."""

from __future__ import annotations

from typing import Any

import pytest

from apps.billing.models import UsageEvent
from apps.chat.models import Chat, Message, Thread
from apps.llm.models import ModelConfig

pytestmark = pytest.mark.django_db


def say(client: Any, content: str, **extra: Any) -> Any:
    return client.post("/chat", {"messages": [{"role": "user", "content": content}], **extra}, format="json")


def test_single_chat_as_in_the_seed(alice_client: Any) -> None:
    response = alice_client.post("/chat", {"messages": [{"content": "Hello SLOP!"}]}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("chat_") and body["thread_id"] is None
    assert body["message"]["role"] == "assistant" and body["message"]["content"] == "Hello SLOP!"
    assert body["model"] == "echo" and body["usage"]["output_tokens"] == 2
    chat = alice_client.get(f"/chat/{body['id']}").json()
    assert [(m["role"], m["content"]) for m in chat["messages"]] == [
        ("user", "Hello SLOP!"),
        ("assistant", "Hello SLOP!"),
    ]
    assert chat["model"] == "echo" and chat["created_at"].endswith("Z")


def test_thread_create_continue_list_and_read(alice_client: Any) -> None:
    first = say(alice_client, "Let's discuss project planning", thread_id="thread_12345", model="echo")
    assert first.status_code == 200 and first.json()["thread_id"] == "thread_12345"
    second = say(alice_client, "What's our next milestone?", thread_id="thread_12345")
    assert second.json()["message"]["content"] == "What's our next milestone?"
    threads = alice_client.get("/chat?type=threads").json()
    assert threads["next_cursor"] is None
    assert threads["threads"] == [
        {
            "id": "thread_12345",
            "title": "Let's discuss project planning",
            "last_message": "What's our next milestone?",
            "created_at": threads["threads"][0]["created_at"],
            "updated_at": threads["threads"][0]["updated_at"],
        }
    ]
    thread = alice_client.get("/chat/thread_12345").json()
    assert thread["thread_id"] == "thread_12345" and thread["title"] == "Let's discuss project planning"
    assert [m["role"] for m in thread["messages"]] == ["user", "assistant", "user", "assistant"]
    assert all(m["id"].startswith("msg_") for m in thread["messages"])
    # Thread exchanges are not standalone chats.
    assert alice_client.get("/chat").json()["chats"] == []


def test_the_model_sees_the_whole_thread(alice_client: Any, alice: Any, openai_upstream: Any) -> None:
    ModelConfig.objects.create(
        tenant=alice,
        name="fake-gpt",
        provider="openai",
        base_url=openai_upstream.url,
        api_key_encrypted=__import__("apps.llm.secrets", fromlist=["x"]).encrypt_secret(
            openai_upstream.api_key
        ),
    )
    say(alice_client, "one", thread_id="thread_t", model="fake-gpt")
    reply = say(alice_client, "two", thread_id="thread_t", model="fake-gpt").json()
    # user, assistant, user: the fake reports how many messages it was sent
    assert reply["message"]["content"] == "You said: two (3 messages)"
    assert reply["usage"] == {"input_tokens": 11, "output_tokens": 5}


def test_generated_and_client_named_ids_and_pagination(alice_client: Any) -> None:
    ids = [say(alice_client, f"message {n}").json()["id"] for n in range(3)]
    page = alice_client.get("/chat?limit=2").json()
    assert [c["id"] for c in page["chats"]] == [ids[2], ids[1]]
    rest = alice_client.get(f"/chat?limit=2&cursor={page['next_cursor']}").json()
    assert [c["id"] for c in rest["chats"]] == [ids[0]] and rest["next_cursor"] is None
    for n in range(3):
        say(alice_client, f"t{n}", thread_id=f"thread_p{n}")
    threads = alice_client.get("/chat?type=threads&limit=2").json()
    assert [t["id"] for t in threads["threads"]] == ["thread_p2", "thread_p1"]
    more = alice_client.get(f"/chat?type=threads&limit=2&cursor={threads['next_cursor']}").json()
    assert [t["id"] for t in more["threads"]] == ["thread_p0"]


def test_thread_messages_paginate_newest_page_first(alice_client: Any) -> None:
    for n in range(3):
        say(alice_client, f"m{n}", thread_id="thread_long")
    page = alice_client.get("/chat/thread_long?limit=4").json()
    assert [m["content"] for m in page["messages"]] == ["m1", "m1", "m2", "m2"]
    older = alice_client.get(f"/chat/thread_long?limit=4&cursor={page['next_cursor']}").json()
    assert [m["content"] for m in older["messages"]] == ["m0", "m0"] and older["next_cursor"] is None


def test_usage_is_metered_once_per_exchange_with_its_model(alice_client: Any, alice: Any) -> None:
    say(alice_client, "one two three")
    say(alice_client, "four")
    rows = list(UsageEvent.objects.for_tenant(alice).filter(model="echo"))
    assert len(rows) == 2 and sum(r.output_tokens for r in rows) == 4
    assert all(r.input_tokens > 0 and r.kind == "llm" for r in rows)


def test_info_lists_the_tenants_models(alice_client: Any, alice: Any, charlie_client: Any) -> None:
    ModelConfig.objects.create(tenant=alice, name="team-model", provider="echo", is_default=True)
    models = alice_client.get("/info").json()["models"]
    assert {"id": "team-model", "provider": "echo", "default": True} in models
    assert {"id": "echo", "provider": "echo", "default": False} in models
    assert [m["id"] for m in charlie_client.get("/info").json()["models"]] == ["echo"]
    # no model named: the tenant's default
    assert say(alice_client, "hi").json()["model"] == "team-model"


def test_model_api_keys_are_encrypted_at_rest(alice: Any, openai_upstream: Any, alice_client: Any) -> None:
    from django.db import connection

    from apps.llm.services import model_config_create

    model_config_create(
        tenant=alice,
        name="secret-gpt",
        provider="openai",
        base_url=openai_upstream.url,
        api_key=openai_upstream.api_key,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key_encrypted FROM llm_modelconfig WHERE name = 'secret-gpt'")
        stored = cursor.fetchone()[0]
    assert openai_upstream.api_key not in stored and stored
    # and the upstream receives the real key (the fake refuses any other)
    assert say(alice_client, "hi", model="secret-gpt").status_code == 200


def test_platform_models_come_from_the_environment(
    settings: Any, openai_upstream: Any, alice_client: Any
) -> None:
    settings.OPENAI_API_KEY = openai_upstream.api_key
    settings.SLOP_OPENAI_BASE_URL = openai_upstream.url
    settings.SLOP_OPENAI_MODELS = ["env-gpt"]
    body = say(alice_client, "hello").json()
    assert body["model"] == "env-gpt" and body["message"]["content"].startswith("You said: hello")
    assert "env-gpt" in [m["id"] for m in alice_client.get("/info").json()["models"]]


def test_upstream_failures_are_502_504_and_store_nothing(
    alice_client: Any, alice: Any, openai_upstream: Any
) -> None:
    from apps.llm.services import model_config_create

    model_config_create(
        tenant=alice,
        name="fake",
        provider="openai",
        base_url=openai_upstream.url,
        api_key=openai_upstream.api_key,
        timeout_seconds=1,
    )
    failed = say(alice_client, "fail500 please", model="fake", thread_id="thread_x")
    assert failed.status_code == 502 and failed.json()["code"] == "upstream_error"
    assert "The model is overloaded" in failed.json()["error"]
    slow = say(alice_client, "be slow", model="fake")
    assert slow.status_code == 504 and slow.json()["code"] == "upstream_timeout"
    assert not Chat.objects.for_tenant(alice).exists() and not Thread.objects.for_tenant(alice).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "tool", "content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"content": 5}]}, "messages[0].content"),
        ({"messages": [{"content": "x" * 100_001}]}, "messages[0].content"),
        ({"messages": [{"content": "hi"}], "thread_id": "12345"}, "thread_id"),
        ({"messages": [{"content": "hi"}], "thread_id": "thread_a/b"}, "thread_id"),
        ({"messages": [{"content": "hi"}], "thread_id": "thread_" + "a" * 65}, "thread_id"),
        ({"messages": [{"content": "hi"}], "thread_id": 7}, "thread_id"),
        ({"messages": [{"content": "hi"}], "model": 7}, "model"),
        ({"messages": [{"content": "hi"}], "temperature": 9}, "temperature"),
        ({"messages": [{"content": "hi"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"content": "hi"}], "tools": 5}, "tools"),
        ({"messages": [{"content": "hi"}], "stream": "yes"}, "stream"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(
    alice_client: Any, alice: Any, body: dict[str, Any], field: str
) -> None:
    response = alice_client.post("/chat", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["details"]
    assert not Message.objects.for_tenant(alice).exists()


def test_unknown_model_is_a_400_listing_the_valid_ones(alice_client: Any) -> None:
    response = say(alice_client, "hi", model="gpt-99")
    assert response.status_code == 400 and response.json()["code"] == "unknown_model"
    assert response.json()["models"] == ["echo"] and "echo" in response.json()["error"]


def test_non_object_and_malformed_bodies(alice_client: Any) -> None:
    assert alice_client.post("/chat", [1, 2], format="json").status_code == 400
    response = alice_client.post("/chat", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_request"


def test_bad_list_params_and_ids(alice_client: Any) -> None:
    assert alice_client.get("/chat?type=people").status_code == 400
    assert alice_client.get("/chat?limit=0").status_code == 400
    assert alice_client.get("/chat?cursor=garbage!").status_code == 400
    assert alice_client.get("/chat/nothing_here").status_code == 404
    assert alice_client.get("/chat/chat_01NOPE").status_code == 404
    assert alice_client.get("/chat/thread_nope").status_code == 404


def test_an_oversize_body_is_a_413(alice_client: Any, alice: Any) -> None:
    response = say(alice_client, "x" * (3 * 1024 * 1024))
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert not Message.objects.for_tenant(alice).exists()


def test_anthropic_model_with_tools_through_the_api(
    client_for: Any, alice: Any, anthropic_upstream: Any
) -> None:
    from apps.llm.services import model_config_create

    model_config_create(
        tenant=alice,
        name="claude-fake",
        provider="anthropic",
        upstream_model="claude-test",
        base_url=anthropic_upstream.url,
        api_key=anthropic_upstream.api_key,
        max_output_tokens=300,
    )
    client = client_for(alice, "chat.write,tools.calculator.execute")
    body = say(client, "use calculator 3*5", model="claude-fake").json()
    assert body["tool_calls"][0]["result"] == 15
    assert body["message"]["content"] == 'Let me calculate. The tool said {"result": 15}'
    sent = anthropic_upstream.requests[-1]
    assert sent["model"] == "claude-test" and sent["max_tokens"] == 300
    assert [t["name"] for t in sent["tools"]] == ["calculator"]


def test_a_model_configured_or_removed_applies_to_the_next_chat(
    alice_client: Any, alice: Any, openai_upstream: Any
) -> None:
    from apps.llm.services import model_config_create

    assert say(alice_client, "hi", model="later-gpt").status_code == 400  # snapshot taken without it
    model_config_create(
        tenant=alice,
        name="later-gpt",
        provider="openai",
        base_url=openai_upstream.url,
        api_key=openai_upstream.api_key,
    )
    response = say(alice_client, "hi", model="later-gpt")
    assert response.status_code == 200, response.json()
    ModelConfig.objects.for_tenant(alice).filter(name="later-gpt").delete()
    assert say(alice_client, "hi", model="later-gpt").status_code == 400


def test_a_change_without_a_signal_is_seen_after_the_snapshot_expires(
    alice_client: Any, alice: Any, openai_upstream: Any, settings: Any
) -> None:
    """What another process saved reaches this one within SLOP_TENANT_CONFIG_CACHE_SECONDS."""
    import time

    from apps.llm.services import model_config_create

    settings.SLOP_TENANT_CONFIG_CACHE_SECONDS = 1
    model_config_create(
        tenant=alice,
        name="old-name",
        provider="openai",
        base_url=openai_upstream.url,
        api_key=openai_upstream.api_key,
    )
    assert say(alice_client, "hi", model="old-name").status_code == 200
    ModelConfig.objects.for_tenant(alice).filter(name="old-name").update(name="new-name")  # no signal
    assert say(alice_client, "hi", model="old-name").status_code == 200  # this process's snapshot
    time.sleep(1.1)
    assert say(alice_client, "hi", model="old-name").status_code == 400
    assert say(alice_client, "hi", model="new-name").status_code == 200
