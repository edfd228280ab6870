"""The /chat endpoints (PROTOCOL.md §4 and §5): thin views over services, selectors and stream runs."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.http.response import HttpResponseBase
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.chat import selectors
from apps.chat.access import CHAT_OR_THREAD, SEND, STREAM, STREAM_BY_QUERY, Resume
from apps.chat.engine import Exchange
from apps.chat.models import Chat, Message, Thread
from apps.chat.serializers import (
    ChatDetailSerializer,
    ChatEventSerializer,
    ChatListQuerySerializer,
    ChatListSerializer,
    ChatReplySerializer,
    ChatRequestSerializer,
    ChatStreamQuerySerializer,
    TicketSerializer,
)
from apps.chat.services import PreparedExchange, exchange_prepare
from apps.chat.streaming import NDJSON, new_stream_response, resumed_stream_response
from apps.chat.tickets import TicketAuthentication, ticket_create
from apps.core.openapi import error_responses
from apps.core.serializers import PageQuerySerializer, ServerSentEventSerializer, page_query, validated_query
from apps.tenants.access import NeedSome
from apps.tenants.api import JsonOrStreamNegotiation, SlopView, json_body
from apps.tenants.authentication import ApiKeyAuthentication
from apps.tenants.public import PublicSurfaceAuthentication

LAST_EVENT_ID = OpenApiParameter(
    "Last-Event-ID",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="<run id>:<n>: resume that run after event n (what EventSource sends by itself)",
)
STREAM_RESPONSES: dict[Any, Any] = {
    (200, "text/event-stream"): OpenApiResponse(
        ServerSentEventSerializer,
        description="Events `id: <run>:<n>` + `data: <ChatEvent JSON>`, then `data: [DONE]`",
    ),
    (200, NDJSON): OpenApiResponse(
        ChatEventSerializer, description="With Accept: application/x-ndjson: one ChatEvent per line"
    ),
}


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
    if message.step is not None:
        body["step"] = message.step
    return body


def thread_summary(thread: Thread) -> dict[str, Any]:
    return {
        "id": thread.thread_id,
        "title": thread.title,
        "last_message": thread.last_message,
        "created_at": _iso(thread.created_at),
        "updated_at": _iso(thread.updated_at),
        **({"agent": thread.agent} if thread.agent else {}),
    }


def _wants_ndjson(request: Request) -> bool:
    return NDJSON in request.headers.get("Accept", "")


def _complete(prepared: PreparedExchange) -> dict[str, Any]:
    """Runs an exchange to its end in this request (no stream); nothing is stored if it fails."""

    async def run() -> dict[str, Any]:
        exchange = Exchange(prepared, to_thread=sync_to_async)
        try:
            async for _ in exchange.events():
                pass
            done = await exchange.finish("complete")
        finally:
            await exchange.abandon()
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

    @extend_schema(parameters=[ChatListQuerySerializer], responses={200: ChatListSerializer})
    def get(self, request: Request) -> Response:
        """Standalone chats, newest first; threads (most recently updated first) with ?type=threads."""
        query = page_query(request.query_params, ChatListQuerySerializer)
        cursor, limit = query["cursor"], query["limit"]
        kind = query.get("type", "chats")
        if kind == "threads":
            page = selectors.thread_list(principal=self.principal, cursor=cursor, limit=limit)
            return Response(
                {"threads": [thread_summary(t) for t in page.items], "next_cursor": page.next_cursor}
            )
        page = selectors.chat_list(principal=self.principal, cursor=cursor, limit=limit)
        chats = [
            {"id": c.chat_id, "snippet": c.snippet, "model": c.model, "created_at": _iso(c.created_at)}
            for c in page.items
        ]
        return Response({"chats": chats, "next_cursor": page.next_cursor})

    @extend_schema(
        request=ChatRequestSerializer,
        responses={200: ChatReplySerializer, **STREAM_RESPONSES, **error_responses(402, 502, 504)},
    )
    def post(self, request: Request) -> HttpResponseBase:
        """One exchange with a model; with `"stream": true` the reply comes as a stream (see
        POST /chat/stream). Without thread_id the exchange is a standalone chat."""
        body = json_body(request)
        prepared = exchange_prepare(principal=self.principal, body=body)
        if body.get("stream") is True:
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

    @extend_schema(
        parameters=[ChatStreamQuerySerializer, LAST_EVENT_ID],
        responses={**STREAM_RESPONSES, **error_responses(402, 502, 504)},
    )
    def get(self, request: Request) -> HttpResponseBase:
        """For EventSource: the message in ?content=, optionally ?thread_id=, ?model=, ?agent=;
        authenticated by a key header or ?ticket= (POST /chat/tickets)."""
        validated_query(ChatStreamQuerySerializer, request.query_params)
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

    @extend_schema(
        request=ChatRequestSerializer,
        parameters=[LAST_EVENT_ID],
        responses={**STREAM_RESPONSES, **error_responses(402, 502, 504)},
    )
    def post(self, request: Request) -> HttpResponseBase:
        """The reply as server-sent events: `id: <run>:<n>` + `data: <json event>` (types thinking,
        content, tool_start, tool_result, agent, error, done), then `data: [DONE]`; NDJSON (one event
        per line) with `Accept: application/x-ndjson`. `Last-Event-ID: <run>:<n>` resumes a run.

        The same events flow over the WebSocket `/chat/ws` (not expressible in OpenAPI): send
        `{"messages": [...], "thread_id": ...}` as often as you like on one connection; after each
        exchange comes `{"status": "complete"}`; `{"type": "cancel"}` stops the current reply.
        Authenticate the handshake with `Authorization: Bearer <key>` or `?ticket=`."""
        resumed = self._resume(request)
        if resumed is not None:
            return resumed
        prepared = exchange_prepare(principal=self.principal, body=json_body(request))
        return new_stream_response(prepared, ndjson=_wants_ndjson(request))


class ChatTicketView(SlopView):
    info_description = "A short-lived ticket for browser EventSource/WebSocket (?ticket=), never the key"
    access = {"POST": NeedSome("chat", "write", "read")}  # a ticket acts with the key's chat scopes

    @extend_schema(request=None, responses={201: TicketSerializer})
    def post(self, request: Request) -> Response:
        """A ticket that stands for this key (narrowed by this request's X-SLOP-Scope) for
        SLOP_CHAT_TICKET_SECONDS, for browser EventSource and WebSocket URLs (?ticket=)."""
        return Response(ticket_create(principal=self.principal), status=201)


class ChatDetailView(SlopView):
    info_description = "A chat (chat_…) with its messages, or a thread (thread_…) with its messages"
    access = {"GET": CHAT_OR_THREAD}

    @extend_schema(parameters=[PageQuerySerializer], responses={200: ChatDetailSerializer})
    def get(self, request: Request, identifier: str) -> Response:
        """`chat_…`: the chat with its messages. `thread_…`: the thread with the newest page of its
        messages, oldest first; next_cursor pages back in time."""
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
        query = page_query(request.query_params)
        cursor, limit = query["cursor"], query["limit"]
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
                **({"agent": thread.agent} if thread.agent else {}),
            }
        )


__all__ = ["ChatDetailView", "ChatStreamView", "ChatTicketView", "ChatView"]
