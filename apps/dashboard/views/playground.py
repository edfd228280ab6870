"""The playground: chat with the team's models and agents, streamed token by token.

The page never holds an API key. To send, it asks `PlaygroundTicket` (a CSRF-protected POST of the
signed-in member) for a short-lived member ticket (apps/chat/tickets.py) and opens the WebSocket
`/chat/ws?ticket=…` with it, one connection per message: each exchange is checked against the
membership and the role of that moment, with the same scope checks as any chat. Threads are listed
and reopened here, server-rendered, through the chat selectors and the member's principal.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from apps.agents.models import Agent
from apps.chat import selectors as chat_selectors
from apps.chat.models import Message, Thread
from apps.chat.serializers import PATTERNS
from apps.chat.tickets import member_ticket_create
from apps.core.errors import ApplicationError
from apps.core.ids import CLIENT_THREAD_ID, new_id
from apps.dashboard.teams import TeamPage
from apps.llm.selectors import available_models, default_model_name
from apps.tenants.access import allows, readable
from apps.tenants.scopes import Action

THREADS_SHOWN = 30
MESSAGES_SHOWN = 100


def _thread_page(page: TeamPage, cursor: str | None) -> dict[str, Any]:
    try:
        found = chat_selectors.thread_list(principal=page.principal, cursor=cursor, limit=THREADS_SHOWN)
    except ApplicationError:  # a cursor that is not one of ours
        raise Http404("No such page of threads") from None
    return {"threads": found.items, "next_cursor": found.next_cursor}


def _readable_thread(page: TeamPage, thread_id: str) -> Thread:
    """The team's thread, if this member may read it; otherwise a 404 (another team's is missing)."""
    if not CLIENT_THREAD_ID.match(thread_id) or not allows(page.principal, Action("chat", "read", thread_id)):
        raise Http404("No such thread")
    try:
        return chat_selectors.thread_get(principal=page.principal, thread_id=thread_id)
    except ApplicationError:
        raise Http404("No such thread") from None


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _shown(message: Message) -> dict[str, Any]:
    """A stored message as the page shows it (tool arguments and results as JSON)."""
    calls = []
    for call in message.tool_calls or []:
        error = call.get("error")
        calls.append(
            {
                "tool": call.get("tool", ""),
                "arguments": _pretty(call.get("arguments", {})),
                "result": None if "result" not in call else _pretty(call["result"]),
                "error": None if error is None else (error if isinstance(error, str) else _pretty(error)),
            }
        )
    return {
        "role": message.role,
        "content": message.content,
        "agent": message.agent,
        "step": message.step,
        "model": message.model,
        "status": message.status,
        "input_tokens": message.input_tokens,
        "output_tokens": message.output_tokens,
        "tool_calls": calls,
    }


def _history(thread: Thread, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    try:
        found = chat_selectors.thread_messages(thread=thread, cursor=cursor, limit=MESSAGES_SHOWN)
    except ApplicationError:
        raise Http404("No such page of messages") from None
    return [_shown(message) for message in found.items], found.next_cursor


def team_agents(page: TeamPage) -> list[Agent]:
    """The team's agents this member may read, by id."""
    queryset = Agent.objects.for_tenant(page.team).order_by("slug")
    ids = readable(page.principal, "agents")
    if ids is not None:
        queryset = queryset.filter(slug__in=ids)
    return list(queryset)


class Playground(TeamPage):
    """GET: the page; `?thread=` reopens a thread (`&before=` pages back), `?agent=` preselects one."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        models = available_models(tenant=self.team)
        agents = team_agents(self)
        thread = None
        history: list[dict[str, Any]] = []
        earlier = None
        if request.GET.get("thread"):
            thread = _readable_thread(self, request.GET["thread"])
            history, earlier = _history(thread, request.GET.get("before"))
        wanted = request.GET.get("agent", "")
        chosen_agent = wanted if any(agent.slug == wanted for agent in agents) else ""
        if not chosen_agent and thread is not None and thread.agent:
            chosen_agent = thread.agent if any(agent.slug == thread.agent for agent in agents) else ""
        default_model = default_model_name(models)
        config = {
            "ticketUrl": reverse("dashboard:playground-ticket", kwargs={"team": self.team.slug}),
            "threadsUrl": reverse("dashboard:playground-threads", kwargs={"team": self.team.slug}),
            "pageUrl": reverse("dashboard:playground", kwargs={"team": self.team.slug}),
            "wsPath": "/chat/ws",
            "threadId": thread.thread_id if thread is not None else new_id("thread"),
            "isNewThread": thread is None,
        }
        context = self.team_context(
            models=sorted(models),
            default_model=default_model,
            chosen_model="" if chosen_agent else (thread.model if thread and thread.model in models else ""),
            agents=agents,
            chosen_agent=chosen_agent,
            patterns=list(PATTERNS),
            thread=thread,
            history=history,
            earlier=earlier,
            playground_config=config,
            **_thread_page(self, None),
        )
        return render(request, "dashboard/playground/page.html", context)


class PlaygroundThreads(TeamPage):
    """The thread list as a fragment (the page refreshes it after each exchange); `?cursor=` pages."""

    def get(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        # A fragment: only what it shows (no frame, so none of the frame's context).
        context = {"team": self.team, "current_thread": request.GET.get("current", "")}
        context.update(_thread_page(self, request.GET.get("cursor")))
        return render(request, "dashboard/playground/_threads.html", context)


class PlaygroundTicket(TeamPage):
    """POST (CSRF-protected, the signed-in member): a short-lived member ticket for /chat/ws or
    /chat/stream. It names the team and the user, not a key; its use reads the membership again."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, **kwargs: Any) -> JsonResponse:
        body = member_ticket_create(membership=self.membership)
        response = JsonResponse({**body, "ws_path": "/chat/ws", "sse_path": "/chat/stream"}, status=201)
        response["Cache-Control"] = "no-store"
        return response
