"""The playground page with the Django client: who opens it, what it lists (the team's models,
agents and threads, never another team's), the member ticket it hands out, and what a console
chat is billed as."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from apps.agents.services import agent_create
from apps.billing.models import UsageEvent
from apps.billing.selectors import usage_summary
from apps.chat.models import Message, Thread
from apps.chat.tickets import principal_for_ticket
from apps.llm.services import model_config_create
from apps.tenants.models import Membership, Tenant
from tests.conftest import SlopClient

pytestmark = pytest.mark.django_db


def page_url(team: Tenant) -> str:
    return f"/console/t/{team.slug}/playground"


def ticket_of(console: Client, team: Tenant) -> str:
    response = console.post(f"{page_url(team)}/ticket")
    assert response.status_code == 201, response.content
    return str(response.json()["ticket"])


def sse_events(response: Any) -> list[dict[str, Any]]:
    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    text = async_to_sync(collect)().decode()
    lines = [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]
    assert lines and lines[-1] == "[DONE]", text
    return [json.loads(line) for line in lines[:-1]]


@pytest.fixture
def charlies_things(charlie: Tenant, client_for: Callable[..., SlopClient]) -> None:
    """Charlie's team: an agent, a model and a thread whose names must never reach Alice's pages."""
    agent_create(tenant=charlie, agent_id="charlie-secret-agent", fields={"description": "charlie only"})
    model_config_create(tenant=charlie, name="charlie-private-model", provider="echo")
    reply = client_for(charlie).post(
        "/chat",
        {"messages": [{"content": "charlie confidential plans"}], "thread_id": "thread_charlie"},
        format="json",
    )
    assert reply.status_code == 200


@pytest.mark.parametrize("role", ["member", "admin", "owner"])
def test_every_role_opens_the_playground(
    console_for: Callable[..., Client], alice: Tenant, role: str
) -> None:
    agent_create(tenant=alice, agent_id="support", fields={"description": "answers questions"})
    response = console_for(alice, role).get(page_url(alice))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="model:echo"' in html and 'value="agent:support"' in html
    assert "csrfmiddlewaretoken" in html and "playground.js" in html
    # The page holds no API key, only where to ask for a ticket.
    assert "slop_" not in html.lower().replace("slop platform", "")
    config = json.loads(re.search(r'<script id="pg-config" type="application/json">(.*?)</script>', html)[1])
    assert config["ticketUrl"] == f"{page_url(alice)}/ticket" and config["threadId"].startswith("thread_")


def test_the_nav_shows_the_playground_and_agents(console_for: Callable[..., Client], alice: Tenant) -> None:
    html = console_for(alice, "member").get(f"/console/t/{alice.slug}/").content.decode()
    assert f'href="{page_url(alice)}"' in html and f'href="/console/t/{alice.slug}/agents"' in html


def test_a_member_of_another_team_gets_404_everywhere(
    console_for: Callable[..., Client], alice: Tenant, charlie: Tenant
) -> None:
    console = console_for(alice, "owner")
    for url in (page_url(charlie), f"{page_url(charlie)}/threads"):
        assert console.get(url).status_code == 404
    assert console.post(f"{page_url(charlie)}/ticket").status_code == 404


def test_another_teams_models_agents_and_threads_never_show(
    console_for: Callable[..., Client], alice: Tenant, charlie: Tenant, charlies_things: None
) -> None:
    console = console_for(alice, "owner")
    pages = [
        console.get(page_url(alice)),
        console.get(f"{page_url(alice)}/threads"),
        console.get(f"/console/t/{alice.slug}/agents"),
        console.get(f"/console/t/{alice.slug}/agents/new"),
    ]
    for response in pages:
        assert response.status_code == 200
        html = response.content.decode()
        for secret in (
            "charlie-secret-agent",
            "charlie-private-model",
            "thread_charlie",
            "charlie confidential",
        ):
            assert secret not in html, (response.request["PATH_INFO"], secret)
    # Charlie's thread id named in Alice's page is a thread Alice's team does not have.
    assert console.get(page_url(alice), {"thread": "thread_charlie"}).status_code == 404
    assert console.get(page_url(alice), {"agent": "charlie-secret-agent"}).status_code == 200
    assert (
        "charlie-secret-agent"
        not in console.get(page_url(alice), {"agent": "charlie-secret-agent"}).content.decode()
    )


def test_threads_are_listed_newest_first_and_reopen_with_their_history(
    console_for: Callable[..., Client], alice: Tenant, alice_client: SlopClient
) -> None:
    for thread_id, text in (("thread_old", "the older one"), ("thread_new", "the newer one")):
        alice_client.post("/chat", {"messages": [{"content": text}], "thread_id": thread_id}, format="json")
    alice_client.post(
        "/chat",
        {"messages": [{"content": '/tool calculator {"expression": "6*7"}'}], "thread_id": "thread_new"},
        format="json",
    )
    console = console_for(alice, "member")
    listing = console.get(f"{page_url(alice)}/threads").content.decode()
    assert listing.index("thread_new") < listing.index("thread_old")
    page = console.get(page_url(alice), {"thread": "thread_new"})
    assert page.status_code == 200
    html = page.content.decode()
    transcript = html[html.index('id="pg-transcript"') : html.index('id="pg-form"')]
    assert "the newer one" in transcript and "the older one" not in transcript
    assert 'class="pg-tool-name">calculator</code>' in transcript and "42" in transcript
    config = json.loads(re.search(r'<script id="pg-config" type="application/json">(.*?)</script>', html)[1])
    assert config["threadId"] == "thread_new" and config["isNewThread"] is False


def test_the_ticket_needs_the_csrf_token(make_member: Callable[..., Any], alice: Tenant) -> None:
    console = Client(enforce_csrf_checks=True)
    console.force_login(make_member(alice, "member"))
    assert console.post(f"{page_url(alice)}/ticket").status_code == 403
    page = console.get(page_url(alice))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    response = console.post(f"{page_url(alice)}/ticket", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    assert response.json()["ws_path"] == "/chat/ws"
    assert console.get(f"{page_url(alice)}/ticket").status_code == 405


def test_signed_out_visitors_get_no_ticket(client: Client, alice: Tenant) -> None:
    response = client.post(f"{page_url(alice)}/ticket")
    assert response.status_code == 302 and "/console/login" in response["Location"]


def test_the_ticket_is_the_members_not_a_key(
    console_for: Callable[..., Client], alice: Tenant, make_member: Callable[..., Any]
) -> None:
    user = make_member(alice, "member", username="mia")
    console = Client()
    console.force_login(user)
    principal = principal_for_ticket(ticket_of(console, alice))
    assert principal.tenant == alice and principal.key_id is None and principal.user_id == user.pk


@pytest.mark.django_db(transaction=True)  # the stream stores its chat from a worker thread
def test_a_ticket_for_one_team_never_opens_anothers_thread(
    console_for: Callable[..., Client], alice: Tenant, charlie: Tenant, charlies_things: None
) -> None:
    ticket = ticket_of(console_for(alice, "owner"), alice)
    streamed = Client().get(
        "/chat/stream", {"ticket": ticket, "content": "hello", "thread_id": "thread_charlie"}
    )
    assert streamed.status_code == 200
    done = sse_events(streamed)[-1]
    assert done["type"] == "done" and done["thread_id"] == "thread_charlie"
    # Alice's team now has its own thread of that name; Charlie's is untouched.
    alices = Thread.objects.for_tenant(alice).get(thread_id="thread_charlie")
    contents = list(Message.objects.for_tenant(alice).filter(thread=alices).values_list("content", flat=True))
    assert contents == ["hello", "hello"]
    charlies = Message.objects.for_tenant(charlie).filter(thread__thread_id="thread_charlie")
    assert sorted(charlies.values_list("content", flat=True)) == ["charlie confidential plans"] * 2
    # Nor does it resume a stream of Charlie's.
    charlie_chat = Message.objects.for_tenant(charlie).first().chat.chat_id  # type: ignore[union-attr]
    resumed = Client().get("/chat/stream", {"ticket": ticket}, HTTP_LAST_EVENT_ID=f"{charlie_chat}:1")
    assert resumed.status_code == 404


def test_a_removed_members_ticket_is_refused(make_member: Callable[..., Any], alice: Tenant) -> None:
    user = make_member(alice, "admin")
    console = Client()
    console.force_login(user)
    ticket = ticket_of(console, alice)
    Membership.objects.for_tenant(alice).filter(user=user).delete()
    refused = Client().get("/chat/stream", {"ticket": ticket, "content": "still here?"})
    assert refused.status_code == 401 and "no longer in the team" in refused.json()["error"]
    assert console.post(f"{page_url(alice)}/ticket").status_code == 404
    assert not Thread.objects.for_tenant(alice).exists() and not Message.objects.for_tenant(alice).exists()


@pytest.mark.django_db(transaction=True)
def test_a_console_chat_is_billed_to_the_team_without_a_key(
    console_for: Callable[..., Client], alice: Tenant
) -> None:
    ticket = ticket_of(console_for(alice, "member"), alice)
    streamed = Client().get("/chat/stream", {"ticket": ticket, "content": "count these four words"})
    assert sse_events(streamed)[-1]["usage"]["output_tokens"] == 4
    event = UsageEvent.objects.for_tenant(alice).get()
    assert event.api_key_id is None and event.output_tokens == 4
    from django.utils import timezone

    today = timezone.now().date()
    by_key = usage_summary(tenant=alice, start=today, end=today, group_by="key")
    assert by_key == [{**by_key[0], "group": None, "output_tokens": 4, "requests": 1}]


def test_older_threads_come_a_page_at_a_time(console_for: Callable[..., Client], alice: Tenant) -> None:
    for number in range(32):
        Thread.objects.for_tenant(alice).create(
            tenant=alice, thread_id=f"thread_n{number:02d}", title=f"t{number}"
        )
    console = console_for(alice, "member")
    first = console.get(f"{page_url(alice)}/threads").content.decode()
    shown = re.findall(r'data-thread="(thread_n\d+)"', first)
    assert len(shown) == 30 and "Older threads" in first
    more = re.search(r'href="([^"]+)" data-more-threads', first)[1].replace("&amp;", "&")
    rest = re.findall(r'data-thread="(thread_n\d+)"', console.get(more).content.decode())
    assert len(rest) == 2 and not set(rest) & set(shown)
    assert console.get(f"{page_url(alice)}/threads", {"cursor": "not-a-cursor"}).status_code == 404
    assert console.get(page_url(alice), {"thread": "not a thread id"}).status_code == 404
