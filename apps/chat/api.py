"""The /chat endpoints (PROTOCOL.md §4 and §5): thin views over services, selectors and stream runs."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.http.response import HttpResponseBase
from rest_framework.request import Request
from rest_framework.response import Response

from apps.chat import selectors
from apps.chat.access import CHAT_OR_THREAD, SEND, STREAM, STREAM_BY_QUERY, Resume
from apps.chat.engine import Exchange
from apps.chat.models import Chat, Message, Thread
from apps.chat.services import PreparedExchange, exchange_prepare
from apps.chat.streaming import NDJSON, new_stream_response, resumed_stream_response
from apps.chat.tickets import TicketAuthentication, ticket_create
from apps.core.errors import ApplicationError
from apps.core.pagination import page_params
from apps.tenants.access import NeedSome
from apps.tenants.api import JsonOrStreamNegotiation, SlopView, json_body
from apps.tenants.authentication import ApiKeyAuthentication
from apps.tenants.public import PublicSurfaceAuthentication


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


def message_json(message: Message) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": message.message_id,
        "role": message.role,
        "content": message.content,
        "created_at": _iso(message.created_at),
    }
    if message.role == "assistant":
        body["status"] = message.status
        body["model"] = message.model
        body["usage"] = {"input_tokens": message.input_tokens, "output_tokens": message.output_tokens}
        if message.tool_calls:
            body["tool_calls"] = message.tool_calls
    if message.agent:
        body["agent"] = message.agent
    return body


def thread_summary(thread: Thread) -> dict[str, Any]:
    return {
        "id": thread.thread_id,
        "title": thread.title,
        "last_message": thread.last_message,
        "created_at": _iso(thread.created_at),
        "updated_at": _iso(thread.updated_at),
    }


def _wants_ndjson(request: Request) -> bool:
    return NDJSON in request.headers.get("Accept", "")


def _complete(prepared: PreparedExchange) -> dict[str, Any]:
    """Runs an exchange to its end in this request (no stream); nothing is stored if it fails."""

    async def run() -> dict[str, Any]:
        exchange = Exchange(prepared, to_thread=sync_to_async)
        async for _ in exchange.events():
            pass
        done = await exchange.finish("complete")
        done.pop("type")
        done.pop("content")
        return done

    return async_to_sync(run)()


class ChatView(SlopView):
    content_negotiation_class = JsonOrStreamNegotiation
    info_description = (
        'Chat with a model (stream with "stream": true); list chats, or threads with ?type=threads'
    )
    access = {"GET": NeedSome("chat", "read"), "POST": SEND}  # lists hold only readable chats

    def get(self, request: Request) -> Response:
        cursor, limit = page_params(request.query_params)
        kind = request.query_params.get("type", "chats")
        if kind == "threads":
            page = selectors.thread_list(principal=self.principal, cursor=cursor, limit=limit)
            return Response(
                {"threads": [thread_summary(t) for t in page.items], "next_cursor": page.next_cursor}
            )
        if kind != "chats":
            raise ApplicationError(
                "type must be chats or threads",
                code="validation_error",
                extra={"details": {"type": ["Must be chats or threads."]}},
            )
        page = selectors.chat_list(principal=self.principal, cursor=cursor, limit=limit)
        chats = [
            {"id": c.chat_id, "snippet": c.snippet, "model": c.model, "created_at": _iso(c.created_at)}
            for c in page.items
        ]
        return Response({"chats": chats, "next_cursor": page.next_cursor})

    def post(self, request: Request) -> HttpResponseBase:
        body = json_body(request)
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise ApplicationError(
                "stream must be true or false",
                code="validation_error",
                extra={"details": {"stream": ["Must be a boolean."]}},
            )
        prepared = exchange_prepare(principal=self.principal, body=body)
        if stream:
            return new_stream_response(prepared, ndjson=_wants_ndjson(request))
        return Response(_complete(prepared))


class ChatStreamView(SlopView):
    """POST /chat/stream (SSE, or NDJSON with Accept: application/x-ndjson) and GET /chat/stream for
    EventSource (?content=&thread_id=&model=). A Last-Event-ID header resumes the run it names."""

    content_negotiation_class = JsonOrStreamNegotiation
    # The public surface comes last: a ticket in the URL wins over acting key-less.
    authentication_classes = [ApiKeyAuthentication, TicketAuthentication, PublicSurfaceAuthentication]
    info_description = "Stream a reply as server-sent events (or NDJSON); Last-Event-ID resumes"
    access = {"GET": STREAM_BY_QUERY, "POST": STREAM}

    def _resume(self, request: Request) -> HttpResponseBase | None:
        if not isinstance(self.target, Resume):
            return None
        return resumed_stream_response(
            tenant_id=int(self.tenant.pk),
            run_id=self.target.run_id,
            after=self.target.after,
            ndjson=_wants_ndjson(request),
        )

    def get(self, request: Request) -> HttpResponseBase:
        resumed = self._resume(request)
        if resumed is not None:
            return resumed
        params = request.query_params
        body: dict[str, Any] = {"messages": [{"role": "user", "content": params.get("content")}]}
        if "content" not in params:
            body["messages"] = []
        for name in ("thread_id", "model", "agent"):
            if params.get(name):
                body[name] = params[name]
        prepared = exchange_prepare(principal=self.principal, body=body)
        return new_stream_response(prepared, ndjson=_wants_ndjson(request))

    def post(self, request: Request) -> HttpResponseBase:
        resumed = self._resume(request)
        if resumed is not None:
            return resumed
        prepared = exchange_prepare(principal=self.principal, body=json_body(request))
        return new_stream_response(prepared, ndjson=_wants_ndjson(request))


class ChatTicketView(SlopView):
    info_description = "A short-lived ticket for browser EventSource/WebSocket (?ticket=), never the key"
    access = {"POST": NeedSome("chat", "write", "read")}  # a ticket acts with the key's chat scopes

    def post(self, request: Request) -> Response:
        return Response(ticket_create(principal=self.principal), status=201)


class ChatDetailView(SlopView):
    info_description = "A chat (chat_…) with its messages, or a thread (thread_…) with its messages"
    access = {"GET": CHAT_OR_THREAD}

    def get(self, request: Request, identifier: str) -> Response:
        if isinstance(self.target, Thread):
            return self._thread(request, self.target)
        chat: Chat = self.target
        return Response(
            {
                "id": chat.chat_id,
                "thread_id": chat.thread.thread_id if chat.thread else None,
                "messages": [message_json(m) for m in selectors.chat_messages(chat=chat)],
                "model": chat.model,
                "created_at": _iso(chat.created_at),
            }
        )

    def _thread(self, request: Request, thread: Thread) -> Response:
        cursor, limit = page_params(request.query_params)
        page = selectors.thread_messages(thread=thread, cursor=cursor, limit=limit)
        return Response(
            {
                "thread_id": thread.thread_id,
                "title": thread.title,
                "messages": [message_json(m) for m in page.items],
                "model": thread.model,
                "created_at": _iso(thread.created_at),
                "updated_at": _iso(thread.updated_at),
                "next_cursor": page.next_cursor,
            }
        )


__all__ = ["ChatDetailView", "ChatStreamView", "ChatTicketView", "ChatView"]
