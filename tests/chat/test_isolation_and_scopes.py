"""Charlie never sees Alice's chats or threads; chat scopes bind every endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from apps.chat.models import Message, Thread

pytestmark = pytest.mark.django_db


def say(client: Any, content: str, **extra: Any) -> Any:
    return client.post("/chat", {"messages": [{"content": content}], **extra}, format="json")


def test_charlie_gets_404_for_alices_chat_and_thread_and_empty_lists(
    alice_client: Any, charlie_client: Any
) -> None:
    chat_id = say(alice_client, "alice secret").json()["id"]
    say(alice_client, "alice thread secret", thread_id="thread_shared")
    assert charlie_client.get(f"/chat/{chat_id}").status_code == 404
    assert charlie_client.get("/chat/thread_shared").status_code == 404
    assert charlie_client.get("/chat").json()["chats"] == []
    assert charlie_client.get("/chat?type=threads").json()["threads"] == []


def test_same_thread_id_in_two_tenants_are_two_threads(
    alice_client: Any, charlie_client: Any, alice: Any, charlie: Any, openai_upstream: Any
) -> None:
    from apps.llm.services import model_config_create

    for tenant in (alice, charlie):
        model_config_create(
            tenant=tenant,
            name="fake",
            provider="openai",
            base_url=openai_upstream.url,
            api_key=openai_upstream.api_key,
        )
    say(alice_client, "alice secret", thread_id="thread_shared", model="fake")
    reply = say(charlie_client, "hi", thread_id="thread_shared", model="fake").json()
    # Charlie's model saw one message: his own, none of Alice's.
    assert reply["message"]["content"] == "You said: hi (1 messages)"
    charlie_thread = charlie_client.get("/chat/thread_shared").json()
    assert "alice secret" not in str(charlie_thread)
    assert charlie_thread["title"] == "hi"
    assert Thread.objects.for_tenant(alice).get().title == "alice secret"
    assert Message.objects.for_tenant(alice).count() == 2


def test_chat_read_cannot_write_and_write_cannot_read(client_for: Any, alice: Any) -> None:
    reader = client_for(alice, "chat.read")
    response = say(reader, "hi")
    assert response.status_code == 403 and response.json()["required_scope"] == "chat.write"
    writer = client_for(alice, "chat.write")
    chat_id = say(writer, "hi").json()["id"]
    assert writer.get(f"/chat/{chat_id}").status_code == 403
    assert writer.get("/chat").status_code == 403
    assert reader.get(f"/chat/{chat_id}").status_code == 200


def test_thread_scopes_are_exact(client_for: Any, alice: Any, alice_client: Any) -> None:
    say(alice_client, "a", thread_id="thread_a")
    say(alice_client, "b", thread_id="thread_b")
    scoped = client_for(alice, "chat.thread_a.write,chat.thread_a.read")
    assert say(scoped, "more", thread_id="thread_a").status_code == 200
    denied = say(scoped, "more", thread_id="thread_b")
    assert denied.status_code == 403 and denied.json()["required_scope"] == "chat.thread_b.write"
    assert say(scoped, "standalone").status_code == 403
    assert [t["id"] for t in scoped.get("/chat?type=threads").json()["threads"]] == ["thread_a"]
    assert scoped.get("/chat/thread_b").status_code == 403
    assert scoped.get("/chat").json()["chats"] == []


def test_scope_header_narrows_the_key(client_for: Any, alice: Any) -> None:
    narrowed = client_for(alice, "*", scope_header="chat.read")
    assert say(narrowed, "hi").status_code == 403
    malformed = client_for(alice, "*", scope_header="chat.nonsense.perm")
    assert say(malformed, "hi").status_code == 400


def test_stream_endpoints_check_scope_and_tenant_before_streaming(
    alice_client: Any, charlie_client: Any, client_for: Any, alice: Any
) -> None:
    reader = client_for(alice, "chat.read")
    response = reader.post("/chat/stream", {"messages": [{"content": "hi"}]}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "scope_violation"
    response = alice_client.post("/chat/stream", {"messages": []}, format="json")
    assert response.status_code == 400
    # resuming a run that is not charlie's (or does not exist) is a 404
    response = charlie_client.post("/chat/stream", {}, format="json", HTTP_LAST_EVENT_ID="chat_01ABC:3")
    assert response.status_code == 404
    response = alice_client.get("/chat/stream", HTTP_LAST_EVENT_ID="garbage")
    assert response.status_code == 400
    assert alice_client.get("/chat/stream").status_code == 400  # no content
    assert (
        alice_client.get("/chat/stream", HTTP_ACCEPT="text/event-stream").json()["code"] == "validation_error"
    )


def test_no_key_is_401_everywhere(client: Any) -> None:
    for method, path in [
        ("get", "/chat"),
        ("post", "/chat"),
        ("post", "/chat/stream"),
        ("get", "/chat/stream"),
        ("get", "/chat/thread_x"),
        ("get", "/chat/chat_x"),
    ]:
        response = getattr(client, method)(path, content_type="application/json")
        assert response.status_code == 401, path


def test_tickets_need_a_chat_scope_and_a_key(client_for: Any, alice: Any, client: Any) -> None:
    assert client.post("/chat/tickets", content_type="application/json").status_code == 401
    no_chat = client_for(alice, "memory.*")
    response = no_chat.post("/chat/tickets")
    assert response.status_code == 403 and response.json()["code"] == "scope_violation"
    made = client_for(alice, "chat.read").post("/chat/tickets")
    assert made.status_code == 201 and made.json()["ticket"].startswith("tkt_")


def test_a_ticket_acts_for_its_own_tenant_only(
    client_for: Any, alice: Any, charlie: Any, client: Any
) -> None:
    from apps.chat.tickets import principal_for_ticket

    ticket = client_for(charlie, "chat.*").post("/chat/tickets").json()["ticket"]
    assert principal_for_ticket(ticket).tenant == charlie
    # a ticket is no API key: it does not open the JSON endpoints
    assert client.get(f"/chat?ticket={ticket}").status_code == 401


def test_a_revoked_key_invalidates_its_tickets(alice: Any, make_key: Any) -> None:
    from rest_framework.test import APIClient

    from apps.chat.tickets import principal_for_ticket
    from apps.core.errors import ApplicationError
    from apps.tenants.services import api_key_revoke

    key = make_key(alice, "chat.*")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    ticket = api.post("/chat/tickets").json()["ticket"]
    api_key_revoke(prefix=key.split("_")[2])
    with pytest.raises(ApplicationError):
        principal_for_ticket(ticket)
