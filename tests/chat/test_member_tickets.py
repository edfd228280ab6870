"""Member tickets (the team console's): they name the team and the user, not a key, and are checked
against the membership when used, so a removed member or a lowered role takes effect at once."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core.cache import cache, caches
from django.test import Client
from django.test.utils import override_settings
from django.urls import path

from apps.chat.consumers import ChatConsumer
from apps.chat.models import Message
from apps.chat.tickets import member_ticket_create, principal_for_ticket, ticket_create
from apps.core.errors import ApplicationError
from apps.memory.models import MemoryItem
from apps.tenants.access import allows
from apps.tenants.authentication import ApiKeyAuthMiddleware
from apps.tenants.models import Membership, Tenant
from apps.tenants.roles import console_principal
from apps.tenants.scopes import Action, parse_scopes
from apps.tenants.services import tenant_public_scopes_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_of(db: None) -> Callable[..., Membership]:
    def make(tenant: Tenant, role: str = "member", name: str = "mia") -> Membership:
        user = get_user_model().objects.create_user(name, password="x" * 12)
        return Membership.objects.for_tenant(tenant).create(tenant=tenant, user=user, role=role)

    return make


def ticket_for(membership: Membership, **kwargs: Any) -> str:
    return str(member_ticket_create(membership=membership, **kwargs)["ticket"])


def stream(ticket: str, content: str, **params: str) -> list[dict[str, Any]]:
    response = Client().get("/chat/stream", {"ticket": ticket, "content": content, **params})
    assert response.status_code == 200, response.content

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    lines = [line[6:] for line in async_to_sync(collect)().decode().split("\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


@pytest.mark.django_db(transaction=True)
def test_a_member_ticket_streams_a_chat(alice: Tenant, member_of: Callable[..., Membership]) -> None:
    events = stream(ticket_for(member_of(alice)), "hello from the console", thread_id="thread_console")
    assert "".join(e["content"] for e in events if e["type"] == "content") == "hello from the console"
    assert events[-1]["type"] == "done" and events[-1]["thread_id"] == "thread_console"
    assert Message.objects.for_tenant(alice).filter(thread__thread_id="thread_console").count() == 2


@pytest.fixture
def _release_worker_connections() -> Iterator[None]:
    yield
    gc.collect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("_release_worker_connections")
async def test_a_member_ticket_opens_the_websocket(
    alice: Tenant, member_of: Callable[..., Membership]
) -> None:
    membership = await sync_to_async(member_of)(alice)
    ticket = await sync_to_async(ticket_for)(membership)
    application = ApiKeyAuthMiddleware(URLRouter([path("chat/ws", ChatConsumer.as_asgi())]))
    communicator = WebsocketCommunicator(application, f"/chat/ws?ticket={ticket}")
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"messages": [{"content": "over the socket"}], "thread_id": "thread_ws"})
    received = [await communicator.receive_json_from(timeout=10)]
    while received[-1] != {"status": "complete"}:
        received.append(await communicator.receive_json_from(timeout=10))
    await communicator.disconnect()
    assert received[-2]["type"] == "done" and received[-2]["message"]["content"] == "over the socket"

    refused = WebsocketCommunicator(application, "/chat/ws?ticket=" + ticket[:-3] + "xyz")
    await refused.connect()
    error = await refused.receive_json_from(timeout=10)
    assert error["type"] == "error" and error["code"] == "unauthenticated"
    await refused.disconnect()


def test_a_member_ticket_lapses(
    alice: Tenant, member_of: Callable[..., Membership], monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    ticket = ticket_for(member_of(alice))
    later = time.time() + settings.SLOP_CHAT_TICKET_SECONDS + 1
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    with pytest.raises(ApplicationError, match="expired") as refused:
        principal_for_ticket(ticket)
    assert refused.value.status == 401


def test_a_tampered_member_ticket_is_refused(alice: Tenant, member_of: Callable[..., Membership]) -> None:
    ticket = ticket_for(member_of(alice))
    for bad in (ticket[:-2] + ("AA" if not ticket.endswith("AA") else "BB"), ticket.replace("tkt_", "tkt_x")):
        with pytest.raises(ApplicationError, match="Invalid ticket"):
            principal_for_ticket(bad)
    response = Client().get("/chat/stream", {"ticket": ticket[:-2] + "zz", "content": "hi"})
    assert response.status_code == 401 and not Message.objects.for_tenant(alice).exists()


def test_a_removed_members_ticket_stops_at_once(alice: Tenant, member_of: Callable[..., Membership]) -> None:
    membership = member_of(alice, "owner")
    ticket = ticket_for(membership)
    assert principal_for_ticket(ticket).user_id == membership.user_id
    membership.delete()
    with pytest.raises(ApplicationError, match="no longer in the team") as refused:
        principal_for_ticket(ticket)
    assert refused.value.status == 401


def test_a_deactivated_user_or_team_stops_its_tickets(
    alice: Tenant, member_of: Callable[..., Membership]
) -> None:
    membership = member_of(alice)
    ticket = ticket_for(membership)
    membership.user.is_active = False
    membership.user.save()
    with pytest.raises(ApplicationError, match="can no longer use the console"):
        principal_for_ticket(ticket)
    membership.user.is_active = True
    membership.user.save()
    alice.is_active = False
    alice.save()
    with pytest.raises(ApplicationError, match="can no longer use the console"):
        principal_for_ticket(ticket)


def test_a_lowered_role_narrows_a_ticket_at_once(alice: Tenant, member_of: Callable[..., Membership]) -> None:
    membership = member_of(alice, "admin")
    ticket = ticket_for(membership)
    write_memory = Action("tools", "execute", "memory_write")
    assert allows(principal_for_ticket(ticket), write_memory)
    membership.role = Membership.Role.MEMBER
    membership.save()
    principal = principal_for_ticket(ticket)
    assert not allows(principal, write_memory)
    assert allows(principal, Action("chat", "write", "thread_x"))
    assert principal.scopes.granted == console_principal(membership).scopes.granted


@pytest.mark.django_db(transaction=True)
def test_a_members_chat_runs_only_the_roles_tools(
    alice: Tenant, member_of: Callable[..., Membership]
) -> None:
    call = '/tool memory_write {"key": "notes/x", "value": "written by the model"}'
    member = ticket_for(member_of(alice, "member", name="mia"))
    result = next(e for e in stream(member, call) if e["type"] == "tool_result")
    assert result["code"] == "scope_violation" and not MemoryItem.objects.for_tenant(alice).exists()
    admin = ticket_for(member_of(alice, "admin", name="ada"))
    result = next(e for e in stream(admin, call) if e["type"] == "tool_result")
    assert "error" not in result and MemoryItem.objects.for_tenant(alice).count() == 1


def test_a_member_ticket_can_be_narrowed_further(alice: Tenant, member_of: Callable[..., Membership]) -> None:
    owner = member_of(alice, "owner")
    principal = principal_for_ticket(ticket_for(owner, narrowed_to=parse_scopes("chat.read")))
    assert allows(principal, Action("chat", "read", "thread_x"))
    assert not allows(principal, Action("chat", "write", "thread_x"))
    nothing = principal_for_ticket(ticket_for(owner, narrowed_to=parse_scopes([])))
    assert not allows(nothing, Action("chat", "read", "thread_x"))  # narrowed to nothing, not widened


def test_a_member_ticket_is_refused_under_another_teams_prefix(
    alice: Tenant, charlie: Tenant, member_of: Callable[..., Membership]
) -> None:
    tenant_public_scopes_set(tenant=charlie, scopes=["chat.*"])
    ticket = ticket_for(member_of(alice))
    response = Client().get(f"/t/{charlie.slug}/chat/stream", {"ticket": ticket, "content": "hi"})
    assert response.status_code == 401
    assert not Message.objects.for_tenant(charlie).exists() and not Message.objects.for_tenant(alice).exists()


def test_a_console_principal_cannot_mint_a_key_ticket(
    alice: Tenant, member_of: Callable[..., Membership]
) -> None:
    with pytest.raises(ApplicationError, match="member ticket"):
        ticket_create(principal=console_principal(member_of(alice)))


@override_settings(RATE_LIMIT_PER_MINUTE=3, ANON_RATE_LIMIT_PER_MINUTE=1)
def test_a_member_is_rate_limited_like_a_key_not_like_the_public(
    alice: Tenant, member_of: Callable[..., Membership]
) -> None:
    cache.clear()
    caches["state"].clear()
    ticket = ticket_for(member_of(alice))
    other = ticket_for(member_of(alice, name="other"))

    def status(with_ticket: str) -> int:
        # A resume of nothing this server sent: a quick 400 that still counts against the limit.
        response = Client().get("/chat/stream", {"ticket": with_ticket, "last_event_id": "garbage"})
        return int(response.status_code)

    assert [status(ticket) for _ in range(4)] == [400, 400, 400, 429]
    assert status(other) == 400  # each member has their own window
