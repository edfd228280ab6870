"""What the chat routes need (apps/tenants/access.py): sending names `chat.<thread_id>.write`
(`chat.write` without a thread); reading a chat, a thread or a resumed stream names the thread.

`SEND` is the one declaration for an exchange, whichever door it comes through: POST /chat,
/chat/stream (body or query string) and every WebSocket message (apps/chat/consumers.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync

from apps.chat import selectors
from apps.chat.runs import remote_store, run_get
from apps.core.errors import ApplicationError, NotFound, ValidationFailed
from apps.core.ids import CLIENT_THREAD_ID
from apps.tenants.access import Context, Need, NeedTarget, Target, body, query
from apps.tenants.authentication import Principal
from apps.tenants.scopes import Action

_LAST_EVENT_ID = re.compile(r"^(chat_[A-Za-z0-9]{1,40}):(\d{1,9})$")


def thread_id_valid(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not CLIENT_THREAD_ID.match(value)):
        raise ValidationFailed({"thread_id": ["Must be thread_ followed by 1-64 of A-Z a-z 0-9 _ -."]})
    return value


SEND = Need("chat", "write", body("thread_id", validate=thread_id_valid))
SEND_BY_QUERY = Need("chat", "write", query("thread_id", validate=thread_id_valid))


@dataclass(frozen=True)
class Resume:
    run_id: str
    after: int


def _remote_meta(tenant_id: int, run_id: str) -> dict[str, Any] | None:
    """The Redis mirror's record of a run, looked up on the server's event loop (views run in a
    thread)."""

    async def get() -> dict[str, Any] | None:
        store = remote_store()
        return await store.meta(tenant_id, run_id) if store is not None else None

    return async_to_sync(get)()


def _resume_target(principal: Principal, header: str) -> Target:
    match = _LAST_EVENT_ID.match(header.strip())
    if match is None:
        raise ApplicationError(
            "Last-Event-ID must be an id this server sent (<run id>:<n>)",
            code="validation_error",
            extra={"details": {"Last-Event-ID": ["Not an event id of this server."]}},
        )
    run_id, after = match[1], int(match[2])
    tenant_id = int(principal.tenant.pk)
    run = run_get(tenant_id=tenant_id, run_id=run_id)
    if run is not None:
        thread_id = run.thread_id
    else:
        meta = _remote_meta(tenant_id, run_id)
        if meta is None:
            raise NotFound(f"Stream not found or expired: {run_id}")
        thread_id = meta.get("thread_id")
    return Target(obj=Resume(run_id=run_id, after=after), any_of=(Action("chat", "read", thread_id),))


def _stream(send: Need) -> NeedTarget:
    """A stream request either resumes a run (Last-Event-ID: reads its thread) or sends."""

    def load(principal: Principal, context: Context) -> Target:
        header = context.headers.get("Last-Event-ID") or context.query.get("last_event_id")
        if header:
            return _resume_target(principal, header)
        return send.resolve(principal, context)

    return NeedTarget(load)


STREAM_BY_QUERY = _stream(SEND_BY_QUERY)
STREAM = _stream(SEND)


def _chat_or_thread(principal: Principal, context: Context) -> Target:
    identifier = str(context.kwargs["identifier"])
    if identifier.startswith("thread_"):
        thread = selectors.thread_get(principal=principal, thread_id=identifier)
        return Target(obj=thread, any_of=(Action("chat", "read", thread.thread_id),))
    if not identifier.startswith("chat_"):
        raise NotFound(f"Chat not found: {identifier}")
    chat = selectors.chat_get(principal=principal, chat_id=identifier)
    named = chat.thread.thread_id if chat.thread else chat.chat_id
    return Target(obj=chat, any_of=(Action("chat", "read", named),))


CHAT_OR_THREAD = NeedTarget(_chat_or_thread)
